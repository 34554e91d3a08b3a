"""How long one training step of a network configuration takes on this machine.

The planner turns a time budget into steps with this figure, measured at the start of
every training run on random data of the planned shapes (a few warm-up steps are not
counted: the first steps allocate memory and pick kernels). Where threads build batches
ahead (beside a GPU), the warm-up also uses up the batches they built while it ran, so
that the timed steps wait for batches as a long run does.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from medloop.domain.model import ModelManifest
from medloop.ml.data import TrainItem
from medloop.ml.device import batch_threads, resolve_device
from medloop.ml.trainer import TrainCallbacks, TrainSpec, train

__all__ = ["seconds_per_step"]


def seconds_per_step(
    manifest: ModelManifest,
    batch_size: int,
    device: str | None = None,
    warmup: int = 2,
    timed: int = 4,
) -> float:
    """Median seconds of ``timed`` training steps of ``manifest``'s network at ``batch_size``.

    Data are random images of the manifest's patch size with one object in the middle
    (augmentation and, for an interactive model, the simulated clicks included, as in
    training).
    """
    dev = resolve_device(device)
    threads = batch_threads(dev)
    # The threads start with 2 x threads batches in hand, built during the first slow
    # steps: timed before those are used up, a step would show the device's pace alone.
    warmup = max(warmup, 2 * threads + 2)
    rng = np.random.default_rng(0)
    shape = manifest.patch_size
    mask = np.zeros(shape, np.uint8)  # one object in the middle, as real masks have
    mask[tuple(slice(s // 4, 3 * s // 4) for s in shape)] = 1
    items = [
        TrainItem(
            f"probe-{i}",
            rng.normal(size=(manifest.image_channels, *shape)).astype(np.float32),
            mask,
        )
        for i in range(2)
    ]
    stamps: list[float] = []

    def on_step(step: int, total: int, loss: float) -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    spec = TrainSpec(
        steps=warmup + timed + 1,
        batch_size=batch_size,
        val_every=0,
        warmup_steps=1,
        device=device,
        checkpoint_every=0,
        batch_threads=threads,
    )
    train(manifest, items, spec, callbacks=TrainCallbacks(on_step=on_step))
    durations = np.diff(stamps[warmup:])
    return float(np.median(durations))
