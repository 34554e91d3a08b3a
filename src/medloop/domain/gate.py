"""The promotion gate: a candidate against production on the same images, decided on
paired per-image differences with a non-inferiority margin.

Comparing two means on a few locked images lets noise decide. Instead, for every
check the candidate and production are scored on the *same* images, and the
per-image differences ``d_i = candidate_i - production_i`` are resampled (a paired
bootstrap, seeded, so a verdict is reproducible). The candidate passes a check when
the lower end of the one-sided confidence interval of the mean difference is above
``-margin``: it is shown to be no worse than production by more than the margin.
A truly equal candidate has differences around 0 and passes once there are enough
images; a candidate worse by more than the margin fails. The checks are:

* the locked validation set, **per class** (a multi-label model may not give up one
  label to win another);
* the held-out corrections (mean over classes per image), once there are
  :data:`MIN_INTERVAL_N` of them (fewer are reported; see below).

Below :data:`MIN_INTERVAL_N` paired images a bootstrap interval says nothing (with two
images its lower end is simply the worse of the two differences, so one image that got
a little worse vetoes a candidate that learned the other well), and neither does the
mean: one held-out image's Dice moves by ±0.4 between two networks whose means differ
by a few hundredths (BUSI's malignant lesions), so a single image would veto a better
candidate about as often as not. The held-out corrections below that count are
therefore reported and do not decide (their reason says so); the locked set, which the
gate always judges, decides alone until the fifth held-out correction. A locked set that
small (a toy project) is judged on its mean difference against the margin.

Every check's basis (n, mean difference, interval, margin, confidence) goes into the
gate's report and the reasons.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from medloop.domain.learning import Decision
from medloop.domain.ports import VersionRecord
from medloop.domain.settings import AcceptanceRule
from medloop.errors import ConfigError

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "MIN_INTERVAL_N",
    "Check",
    "decide",
    "paired_interval",
    "promotion_reason",
]

BOOTSTRAP_RESAMPLES = 4000
MIN_INTERVAL_N = 5
"""Fewest paired images a check's bootstrap interval is judged on. Fewer held-out
corrections are reported without deciding; a smaller locked set is judged on its mean."""


@dataclass(frozen=True)
class Check:
    """One comparison of the gate, with its statistical basis."""

    name: str
    n: int
    candidate: float
    production: float
    mean_difference: float
    lower: float
    upper: float
    margin: float
    confidence: float
    passed: bool
    basis: str = "interval"
    """``interval``: the interval's lower end was judged; ``mean``: too few images for one,
    the mean was judged; ``reported``: too few to judge, the check did not decide (and
    ``passed`` is true, so that it blocks nothing)."""

    def reason(self) -> str:
        verdict = "ok" if self.passed else "worse"
        head = (
            f"{self.name}: Dice {self.production:.4f} -> {self.candidate:.4f}, paired difference "
            f"{self.mean_difference:+.4f}"
        )
        if self.basis == "reported":
            return (
                f"{head} (n={self.n}, fewer than {MIN_INTERVAL_N}: reported, not deciding; "
                f"the locked set decides)"
            )
        if self.basis == "mean":
            return (
                f"{head} (n={self.n}, too few for an interval: the mean is judged, "
                f"margin {self.margin}) ({verdict})"
            )
        return (
            f"{head} ({self.confidence:.0%} CI {self.lower:+.4f}..{self.upper:+.4f}, "
            f"n={self.n}, margin {self.margin}) ({verdict})"
        )

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def paired_interval(
    differences: np.ndarray, confidence: float, seed: int = 0
) -> tuple[float, float]:
    """Bootstrap percentile interval of the mean of paired ``differences``.

    The lower end is the one-sided ``confidence`` bound (e.g. the 5th percentile for
    0.95); the upper end mirrors it. Deterministic for a given ``seed``.
    """
    d = np.asarray(differences, dtype=np.float64)
    if d.size == 0:
        return (float("nan"), float("nan"))
    if d.size == 1 or np.allclose(d, d[0]):
        return (float(d.mean()), float(d.mean()))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(BOOTSTRAP_RESAMPLES, d.size))
    means = d[idx].mean(axis=1)
    tail = 100 * (1 - confidence)
    return (float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail)))


def _check(
    name: str,
    cand: np.ndarray,
    prod: np.ndarray,
    rule: AcceptanceRule,
    seed: int,
    few: str = "mean",
) -> Check:
    """One paired check; ``few`` is its basis below :data:`MIN_INTERVAL_N` images
    (``mean`` or ``reported``)."""
    d = cand - prod
    lo, hi = paired_interval(d, rule.confidence, seed)
    basis = "interval" if d.size >= MIN_INTERVAL_N else few
    judged = {"interval": lo, "mean": float(d.mean()), "reported": 0.0}[basis]
    return Check(
        name=name,
        n=int(d.size),
        candidate=float(cand.mean()),
        production=float(prod.mean()),
        mean_difference=float(d.mean()),
        lower=lo,
        upper=hi,
        margin=rule.margin,
        confidence=rule.confidence,
        passed=bool(judged >= -rule.margin - 1e-12),
        basis=basis,
    )


def decide(
    rule: AcceptanceRule,
    candidate_locked: np.ndarray,
    production_locked: np.ndarray | None,
    candidate_heldout: np.ndarray | None = None,
    production_heldout: np.ndarray | None = None,
) -> tuple[Decision, list[Check]]:
    """Whether ``rule`` promotes the candidate, and the basis of each check.

    Args:
        rule: the project's acceptance rule (margin, confidence).
        candidate_locked, production_locked: per-image, per-class Dice ``(n, K)`` of
            both versions on the same locked images (same order); ``production_locked``
            is ``None`` when nothing is in production (the first version is promoted).
        candidate_heldout, production_heldout: ``(m, K)`` on the held-out corrections.
    """
    if production_locked is None:
        return Decision(True, ("no production version yet: the first version is promoted",)), []
    checks = [
        _check(
            f"class {c + 1} on the locked set",
            candidate_locked[:, c],
            production_locked[:, c],
            rule,
            c,
        )
        for c in range(candidate_locked.shape[1])
    ]
    if candidate_heldout is not None and production_heldout is not None and candidate_heldout.size:
        checks.append(
            _check(
                "held-out corrections",
                candidate_heldout.mean(axis=1),
                production_heldout.mean(axis=1),
                rule,
                1000,
                few="reported",
            )
        )
    reasons = [c.reason() for c in checks]
    if not (candidate_heldout is not None and candidate_heldout.size):
        reasons.append("no held-out corrections yet: judged on the locked validation set only")
    return Decision(all(c.passed for c in checks), tuple(reasons)), checks


def promotion_reason(record: VersionRecord, actor: str, reason: str | None) -> str:
    """The event text of a promotion by hand; one over the gate's rejection needs a reason.

    Raises:
        ConfigError: ``record`` was rejected by the gate and no reason was given.
    """
    why = (reason or "").strip()
    rejected = record.report is not None and not record.report.get("accepted", True)
    if rejected and not why:
        raise ConfigError(
            f"{record.name} was rejected by the gate: promoting it anyway needs a reason"
        )
    if rejected:
        return f"promoted by {actor} over the gate's rejection: {why}"
    return f"promoted by {actor}" + (f": {why}" if why else "")
