"""Scores of a model version and the gate's verdict, as plain data."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Decision", "EvalSummary", "is_held_out"]


@dataclass(frozen=True)
class EvalSummary:
    """Scores of one version on one image set; per-class lists are for classes 1..K.

    ``hd95`` is in pixels (NaN where undefined for every image).
    """

    n_images: int
    mean_dice: float
    dice: tuple[float, ...]
    iou: tuple[float, ...]
    hd95: tuple[float, ...]
    per_group: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hd95"] = [None if math.isnan(v) else v for v in self.hd95]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalSummary:
        return cls(
            n_images=int(d["n_images"]),
            mean_dice=float(d["mean_dice"]),
            dice=tuple(d["dice"]),
            iou=tuple(d["iou"]),
            hd95=tuple(math.nan if v is None else float(v) for v in d["hd95"]),
            per_group=dict(d.get("per_group", {})),
        )


@dataclass(frozen=True)
class Decision:
    """The gate's verdict with the reasons, one line each."""

    accepted: bool
    reasons: tuple[str, ...]


def is_held_out(seq: int, share: float) -> bool:
    """Whether the ``seq``-th correction (0-based) of a project is held out for the gate.

    Every ``round(1 / share)``-th correction is, decided when it arrives and never
    changed after, so a held-out correction is never trained on.
    """
    if not 0.0 <= share < 1.0:
        raise ValueError(f"held-out share must be in [0, 1), got {share}")
    if share == 0.0:
        return False
    every = max(2, round(1.0 / share))
    return (seq + 1) % every == 0
