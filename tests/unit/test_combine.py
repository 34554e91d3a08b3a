"""Callers' work combined into batches run by the callers themselves."""

from __future__ import annotations

import threading
import time

import pytest

from medloop.combine import Combiner, Failed


def test_a_lone_caller_runs_its_item_in_its_own_thread() -> None:
    threads: list[str] = []

    def run(items: list[int]) -> list[int]:
        threads.append(threading.current_thread().name)
        return [i * 2 for i in items]

    c: Combiner[int, int] = Combiner(run)
    assert c.submit(21) == 42
    assert threads == [threading.current_thread().name] and c.batches == 1


def test_callers_that_wait_together_share_batches() -> None:
    sizes: list[int] = []

    def run(items: list[int]) -> list[int]:
        sizes.append(len(items))
        time.sleep(0.01)  # while this batch runs, others arrive
        return [-i for i in items]

    c: Combiner[int, int] = Combiner(run, max_batch=4)
    results: dict[int, int] = {}
    start = threading.Barrier(12)

    def caller(i: int) -> None:
        start.wait()
        results[i] = c.submit(i)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: -i for i in range(12)}
    assert sum(sizes) == 12 and max(sizes) <= 4 and len(sizes) < 12


def test_failures_reach_their_own_callers() -> None:
    def run(items: list[int]) -> list[int | Failed]:
        return [Failed(ValueError(f"bad {i}")) if i < 0 else i for i in items]

    c: Combiner[int, int] = Combiner(run)
    with pytest.raises(ValueError, match="bad -1"):
        c.submit(-1)
    assert c.submit(3) == 3


def test_a_batch_that_raises_or_miscounts_fails_its_callers_and_the_next_batch_runs() -> None:
    calls = {"n": 0}

    def run(items: list[int]) -> list[int]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("model crashed")
        if calls["n"] == 2:
            return []
        return items

    c: Combiner[int, int] = Combiner(run)
    with pytest.raises(RuntimeError, match="model crashed"):
        c.submit(1)
    with pytest.raises(RuntimeError, match="gave 0 outcomes"):
        c.submit(2)
    assert c.submit(3) == 3
    with pytest.raises(ValueError, match="max_batch"):
        Combiner(run, max_batch=0)
