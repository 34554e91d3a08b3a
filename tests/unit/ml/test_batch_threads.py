"""Batches built ahead in worker threads: the same stream, resumable, and MONAI's
process-wide tracking switch safe when the threads overlap."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
import torch

from medloop.domain.model import ModelManifest
from medloop.ml.data import Batch, PatchSampler, TrainItem, untracked
from medloop.ml.device import batch_threads
from medloop.ml.trainer import TrainSpec, train

from .conftest import make_items

SPEC = TrainSpec(steps=8, batch_size=4, lr=3e-3, warmup_steps=2, val_every=0, device="cpu")


def _items(n: int = 5) -> list[TrainItem]:
    rng = np.random.default_rng(3)
    out = []
    for i in range(n):
        mask = np.zeros((48, 40), np.uint8)
        mask[10 + i : 30, 8 : 20 + i] = 1 + i % 2
        out.append(TrainItem(f"i{i}", rng.normal(size=(2, 48, 40)).astype(np.float32), mask))
    return out


def _same(a: Batch, b: Batch) -> bool:
    return (
        a.keys == b.keys
        and torch.equal(a.images, b.images)
        and torch.equal(a.masks, b.masks)
        and torch.equal(a.weights, b.weights)
    )


@pytest.mark.parametrize("workers", [1, 3])
def test_worker_threads_hand_out_the_batches_built_in_place(workers: int) -> None:
    items = _items()
    plain = PatchSampler(items, (32, 32), 4, np.random.default_rng(7))
    ahead = PatchSampler(items, (32, 32), 4, np.random.default_rng(7), workers=workers)
    try:
        batches = [(plain.next_batch(), ahead.next_batch()) for _ in range(7)]
    finally:
        ahead.close()
    assert all(_same(a, b) for a, b in batches)
    # Augmented: consecutive batches differ, so equal streams are not a constant.
    assert not torch.equal(batches[0][0].images, batches[1][0].images)


def test_a_restored_state_continues_the_stream_that_threads_had_built_ahead() -> None:
    items = _items()
    ahead = PatchSampler(items, (32, 32), 4, np.random.default_rng(11), workers=2)
    try:
        for _ in range(3):
            ahead.next_batch()
        state = ahead.rng_state
        assert state != ahead.rng.bit_generator.state  # the threads have drawn ahead
        expected = [ahead.next_batch() for _ in range(3)]
    finally:
        ahead.close()
    again = PatchSampler(items, (32, 32), 4, np.random.default_rng(0))
    again.restore(state)
    assert all(_same(again.next_batch(), b) for b in expected)


def test_closing_stops_the_threads_and_a_later_batch_starts_them_again() -> None:
    sampler = PatchSampler(_items(), (32, 32), 2, np.random.default_rng(1), workers=2)
    sampler.next_batch()
    assert any(t.name.startswith("medloop-batches") for t in threading.enumerate())
    sampler.close()
    assert not any(t.name.startswith("medloop-batches") for t in threading.enumerate())
    assert sampler.next_batch().images.shape == (2, 2, 32, 32)
    sampler.close()


def test_a_failing_build_raises_in_the_training_thread() -> None:
    sampler = PatchSampler(_items(), (32, 32), 2, np.random.default_rng(1), workers=2)

    def broken(seed: int) -> Batch:
        raise ValueError(f"unreadable item (seed {seed})")

    sampler._build = broken  # type: ignore[method-assign]
    try:
        with pytest.raises(ValueError, match="unreadable item"):
            sampler.next_batch()
    finally:
        sampler.close()


def test_tracking_stays_off_until_the_last_overlapping_block_leaves() -> None:
    from monai.data import get_track_meta

    assert get_track_meta()
    inside, release = threading.Event(), threading.Event()
    seen: list[bool] = []

    def long_block() -> None:
        with untracked():
            inside.set()
            release.wait(5)
            seen.append(get_track_meta())

    worker = threading.Thread(target=long_block)
    worker.start()
    assert inside.wait(5)
    with untracked():  # enters after the other thread and leaves first
        pass
    release.set()
    worker.join(5)
    assert seen == [False]  # the short block's exit did not turn tracking back on
    assert get_track_meta()  # the last one out restored it


def test_batches_are_built_ahead_beside_a_gpu_only() -> None:
    assert batch_threads(torch.device("cpu")) == 0
    assert 1 <= batch_threads(torch.device("cuda")) <= 4


def test_training_with_batch_threads_gives_the_same_weights(manifest: ModelManifest) -> None:
    items = make_items(0, 4)
    plain = train(manifest, items, replace(SPEC, batch_threads=0))
    threaded = train(manifest, items, replace(SPEC, batch_threads=2))
    for k in plain.state_dict:
        assert torch.equal(plain.state_dict[k], threaded.state_dict[k]), k
    assert not any(t.name.startswith("medloop-batches") for t in threading.enumerate())
