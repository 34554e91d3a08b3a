"""Budgets of the loop benchmark: ``quick`` for 2 CPU cores, ``full`` for a GPU.

The base model is planned from the data within ``base_budget_s``; every strategy
fine-tunes with the project's default learning policy (``LearningPolicy()``), with the
overrides the command line gives, so that they compare at equal cost.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Budget", "budget"]


@dataclass(frozen=True)
class Budget:
    base_budget_s: float
    max_val_images: int | None
    max_test_images: int | None
    """The source group's test images scored each round (a fixed subset, for time)."""


QUICK = Budget(base_budget_s=120.0, max_val_images=None, max_test_images=48)
FULL = Budget(base_budget_s=600.0, max_val_images=None, max_test_images=None)


def budget(quick: bool) -> Budget:
    return QUICK if quick else FULL
