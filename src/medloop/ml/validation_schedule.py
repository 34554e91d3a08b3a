"""When a training run scores its validation items: every so many steps, or within a time share.

A run without a time budget scores the validation (selection) items every ``val_every``
steps and at its last step, and keeps the best weights. A run with a budget
(``max_seconds``) pays for each validation with training steps it will not take: on a
2-core AVX2 CPU, scoring the demo's 40 selection images (96² windows, float32) took 4 s,
and three validations took 12 of the demo's 41 training seconds. Such a run spends at most
``share`` of its budget validating: when the validations ``val_every`` asks for would cost
more, as many as fit are spread evenly over the budget's time, the last step's included.
The last step is always scored, so that the run's reported selection Dice and the choice
between the last and the best earlier weights stay; its estimated cost is kept back from
the training time, so that the run still ends on time.

Pure arithmetic: the caller estimates the cost of one validation before the run (the
learner times a pass over the selection set) and the trainer asks this module when to
validate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DEFAULT_SHARE", "ValidationSchedule", "schedule_validations"]

DEFAULT_SHARE = 0.1
"""The most of a time budget that validations may take."""


@dataclass(frozen=True)
class ValidationSchedule:
    """When validations fall before the last step (which is always scored, unless the
    run asked for none).

    Attributes:
        every: steps between validations; 0 when they fall by time (or not at all).
        at_seconds: the run's elapsed seconds (training and validating) at which the
            validations before the last fall, ascending; used when ``every`` is 0.
        reason: one line on how the schedule was chosen, for the run's record.
    """

    every: int
    at_seconds: tuple[float, ...] = ()
    reason: str = ""

    def due(self, step: int, elapsed_before: float, elapsed_after: float) -> bool:
        """Whether a validation falls after ``step`` (1-based), whose training took the run
        from ``elapsed_before`` to ``elapsed_after`` seconds."""
        if self.every:
            return step % self.every == 0
        return any(elapsed_before < t <= elapsed_after for t in self.at_seconds)


def schedule_validations(
    steps: int,
    val_every: int,
    max_seconds: float | None,
    seconds_per_validation: float | None,
    share: float = DEFAULT_SHARE,
) -> ValidationSchedule:
    """The validation schedule of a run.

    Args:
        steps: the run's step count (its cap, when it has a time budget).
        val_every: steps between validations asked for (0: none, not even the last).
        max_seconds: the run's time budget in seconds; ``None``: none.
        seconds_per_validation: measured (or estimated) seconds one validation takes;
            ``None``: unknown, validations fall by steps.
        share: the most of ``max_seconds`` the validations may take, the last included.

    Returns:
        By steps when there is no budget, no cost, or the asked-for validations fit the
        share; otherwise evenly spaced times, as many as fit (possibly none before the
        last).
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must lie in 0..1, got {share}")
    if val_every <= 0:
        return ValidationSchedule(0, (), "not scored: the last weights are kept")
    asked = max(0, math.ceil(steps / val_every) - 1)  # before the last step
    if max_seconds is None or not seconds_per_validation or seconds_per_validation <= 0:
        return ValidationSchedule(val_every, (), f"scored every {val_every} steps")
    fit = math.floor(share * max_seconds / seconds_per_validation) - 1  # the last's cost first
    if fit >= asked:
        return ValidationSchedule(
            val_every,
            (),
            f"scored every {val_every} steps ({seconds_per_validation:.1f} s each fit "
            f"{share:.0%} of the {max_seconds:.0f}-s budget)",
        )
    k = max(0, fit)
    times = tuple(max_seconds * j / (k + 1) for j in range(1, k + 1))
    return ValidationSchedule(
        0,
        times,
        f"scored {k} time(s) before the last step, not {asked}: one validation takes "
        f"{seconds_per_validation:.1f} s and validations may take {share:.0%} of the "
        f"{max_seconds:.0f}-s budget",
    )
