"""Training budgets of the benchmarks: ``quick`` for 2 CPU cores, ``full`` for a GPU."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Budget", "budget"]


@dataclass(frozen=True)
class Budget:
    channels: tuple[int, ...]
    patch_size: int
    base_steps: int
    batch_size: int
    lr: float
    val_every: int
    max_val_images: int | None
    finetune_steps: int
    finetune_lr: float
    correction_weight: float
    replay_size: int
    max_test_images: int | None


QUICK = Budget(
    channels=(16, 32, 64, 128),
    patch_size=128,
    base_steps=400,
    batch_size=8,
    lr=2e-3,
    val_every=100,
    max_val_images=None,
    finetune_steps=300,
    finetune_lr=3e-4,
    correction_weight=16.0,
    replay_size=256,
    max_test_images=48,
)

FULL = Budget(
    channels=(32, 64, 128, 256, 512),
    patch_size=256,
    base_steps=1500,
    batch_size=16,
    lr=1e-3,
    val_every=250,
    max_val_images=None,
    finetune_steps=300,
    finetune_lr=3e-4,
    correction_weight=16.0,
    replay_size=256,
    max_test_images=None,
)


def budget(quick: bool) -> Budget:
    return QUICK if quick else FULL
