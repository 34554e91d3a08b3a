"""Budgets of the loop benchmark: ``quick`` for 2 CPU cores, ``full`` for a GPU.

The base model is planned from the data within ``base_budget_s``; the fine-tune policy
is the same for every strategy so that they compare at equal cost.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Budget", "budget"]


@dataclass(frozen=True)
class Budget:
    base_budget_s: float
    batch_size: int
    max_val_images: int | None
    finetune_steps: int
    finetune_lr: float
    correction_weight: float
    replay_size: int
    max_test_images: int | None


QUICK = Budget(
    base_budget_s=120.0,
    batch_size=8,
    max_val_images=None,
    finetune_steps=300,
    finetune_lr=3e-4,
    correction_weight=16.0,
    replay_size=256,
    max_test_images=48,
)

FULL = Budget(
    base_budget_s=600.0,
    batch_size=16,
    max_val_images=None,
    finetune_steps=300,
    finetune_lr=3e-4,
    correction_weight=16.0,
    replay_size=256,
    max_test_images=None,
)


def budget(quick: bool) -> Budget:
    return QUICK if quick else FULL
