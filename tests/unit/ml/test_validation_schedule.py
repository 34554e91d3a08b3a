"""Validations of a budgeted run take at most their share of the budget; the last step is scored."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

import medloop.ml.trainer as trainer
from medloop.domain.model import ModelManifest
from medloop.ml.trainer import TrainCallbacks, TrainSpec, train
from medloop.ml.validation_schedule import schedule_validations
from medloop.storage.folder_registry import FolderCheckpoint

from .conftest import make_items


def _count(schedule, steps: int, seconds_per_step: float) -> int:
    """Validations before the last step when every step takes ``seconds_per_step``."""
    return sum(
        schedule.due(s, (s - 1) * seconds_per_step, s * seconds_per_step) for s in range(1, steps)
    )


def test_without_a_budget_validations_fall_by_steps() -> None:
    s = schedule_validations(steps=600, val_every=100, max_seconds=None, seconds_per_validation=9)
    assert s.every == 100 and _count(s, 600, 1.0) == 5


def test_cheap_validations_keep_the_steps_asked_for() -> None:
    # 5 before the last + the last = 6 x 0.5 s = 3 s, within 10 % of 60 s
    s = schedule_validations(600, 100, max_seconds=60.0, seconds_per_validation=0.5)
    assert s.every == 100 and _count(s, 600, 0.1) == 5


def test_costly_validations_are_fewer_and_spread_by_time() -> None:
    # 10 % of 300 s = 30 s = 3 validations of 10 s: the last and 2 before it
    s = schedule_validations(1200, 100, max_seconds=300.0, seconds_per_validation=10.0)
    assert s.every == 0
    assert s.at_seconds == pytest.approx((100.0, 200.0))
    assert _count(s, 1200, 0.25) == 2
    assert "2 time(s) before the last step, not 11" in s.reason


def test_a_validation_dearer_than_the_share_leaves_only_the_last() -> None:
    # the demo on a 2-core AVX2 CPU: 4 s per validation, 41-s budget
    s = schedule_validations(247, 41, max_seconds=41.0, seconds_per_validation=4.2)
    assert s.every == 0 and s.at_seconds == () and _count(s, 247, 0.2) == 0


def test_a_run_that_asks_for_no_validation_gets_none() -> None:
    s = schedule_validations(100, 0, max_seconds=60.0, seconds_per_validation=1.0)
    assert s.every == 0 and s.at_seconds == () and _count(s, 100, 0.5) == 0
    assert s.reason == "not scored: the last weights are kept"


def test_share_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="share"):
        schedule_validations(10, 5, 10.0, 1.0, share=1.5)


def test_a_budgeted_run_with_slow_validations_scores_only_its_last_step(
    manifest: ModelManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    items, val = make_items(0, 4), make_items(1, 3)
    real = trainer.evaluate_items

    def slow(*args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.05 * len(args[1]))  # 0.05 s an item: 0.15 s a validation
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "evaluate_items", slow)
    scored: list[int] = []
    spec = TrainSpec(
        steps=20,
        batch_size=2,
        warmup_steps=2,
        val_every=2,
        device="cpu",
        max_seconds=60.0,
        val_seconds=0.15,  # the caller's estimate
        val_share=0.002,  # 0.12 s of 60: not even one validation fits; the last is scored
    )
    res = train(
        manifest,
        items,
        spec,
        val_items=val,
        callbacks=TrainCallbacks(on_validate=lambda step, _: scored.append(step)),
    )
    assert scored == [20]
    assert res.best_step == 20 and "0 time(s) before the last step, not 9" in res.validation
    assert res.validation_seconds >= 0.15  # the last validation, measured

    scored.clear()
    generous = train(
        manifest,
        items,
        replace(spec, val_share=1.0),
        val_items=val,
        callbacks=TrainCallbacks(on_validate=lambda step, _: scored.append(step)),
    )
    assert scored == list(range(2, 21, 2)) and generous.validation.startswith("scored every 2")


def test_a_resumed_budgeted_run_keeps_its_time_schedule(
    manifest: ModelManifest, tmp_path: Path
) -> None:
    """The elapsed time is restored with the checkpoint, so a run stopped after its first
    timed validation scores neither that one again nor skips the next."""
    spec = TrainSpec(
        steps=100_000,  # time ends the run
        batch_size=2,
        warmup_steps=2,
        val_every=2,
        device="cpu",
        max_seconds=3.0,
        val_seconds=0.1,
        val_share=0.1,
    )
    planned = schedule_validations(spec.steps, 2, 3.0, 0.1, 0.1)
    assert planned.every == 0 and len(planned.at_seconds) == 2  # about 1 s and 2 s
    items, val = make_items(0, 4), make_items(1, 3)
    checkpoint = FolderCheckpoint(tmp_path / "run")
    first: list[int] = []
    partial = train(
        manifest,
        items,
        spec,
        val_items=val,
        checkpoint=checkpoint,
        callbacks=TrainCallbacks(
            on_validate=lambda step, _: first.append(step), should_stop=lambda: bool(first)
        ),
    )
    assert partial.stopped and len(first) == 1
    then: list[int] = []
    resumed = train(
        manifest,
        items,
        spec,
        val_items=val,
        checkpoint=checkpoint,
        callbacks=TrainCallbacks(on_validate=lambda step, _: then.append(step)),
    )
    assert len(then) == 2 and first[0] < then[0] < then[1] == resumed.steps
    assert resumed.seconds < 3.0  # only what was left of the budget
