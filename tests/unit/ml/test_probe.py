"""The timing probe measures the pace a long run keeps, also where threads build the
batches ahead and the batches, not the device, set that pace."""

from __future__ import annotations

import time

import pytest

import medloop.ml.probe as probe
from medloop.domain.model import ModelManifest
from medloop.ml.data import Batch, PatchSampler

BUILD_S = 0.06


def test_the_probe_waits_out_the_batches_built_during_its_warm_up(
    manifest: ModelManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = PatchSampler._build

    def slow_build(self: PatchSampler, seed: int) -> Batch:
        time.sleep(BUILD_S)  # a batch that takes longer to build than to train on
        return build(self, seed)

    monkeypatch.setattr(PatchSampler, "_build", slow_build)
    monkeypatch.setattr(probe, "batch_threads", lambda device: 2)
    seconds = probe.seconds_per_step(manifest, batch_size=2, device="cpu")
    # Two threads deliver a batch every BUILD_S / 2 at best: a long run cannot go faster.
    assert seconds >= 0.8 * BUILD_S / 2, seconds
