"""Learning settings and the promotion gate, as plain data and pure functions."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from medloop.errors import ConfigError

__all__ = ["AcceptanceRule", "Decision", "EvalSummary", "LearningPolicy", "Strategy"]


class Strategy(StrEnum):
    """How a fine-tune mixes corrections with reference data.

    ``weighted-replay`` (medloop's): corrections at weight *w* plus a replay sample of
    the reference training data at weight 1. ``corrections-only``: corrections alone,
    weight 1. ``all-equal``: corrections plus all reference data, weight 1 (what
    MONAI Label does). ``retrain``: from scratch on everything, weight 1.
    """

    WEIGHTED_REPLAY = "weighted-replay"
    CORRECTIONS_ONLY = "corrections-only"
    ALL_EQUAL = "all-equal"
    RETRAIN = "retrain"


@dataclass(frozen=True)
class LearningPolicy:
    """Per-project fine-tuning settings (the patent's claims 1, 2, 7, 8, 9)."""

    correction_weight: float = 16.0
    replay_size: int = 256
    steps: int = 300
    lr: float = 3e-4
    batch_size: int = 8
    held_out_share: float = 0.2
    strategy: Strategy = Strategy.WEIGHTED_REPLAY
    seed: int = 0

    def __post_init__(self) -> None:
        if self.correction_weight <= 0:
            raise ConfigError(f"correction_weight must be > 0, got {self.correction_weight}")
        if self.replay_size < 0:
            raise ConfigError(f"replay_size must be >= 0, got {self.replay_size}")
        if self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")
        if not 0.0 <= self.held_out_share < 1.0:
            raise ConfigError(f"held_out_share must be in [0, 1), got {self.held_out_share}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["strategy"] = self.strategy.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LearningPolicy:
        return cls(**{**d, "strategy": Strategy(d.get("strategy", Strategy.WEIGHTED_REPLAY))})


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


@dataclass(frozen=True)
class AcceptanceRule:
    """Promote a candidate only if it does not get worse.

    * on the locked validation set, no class's mean Dice drops by more than
      ``max_class_dice_drop`` against production;
    * on held-out corrections (when there are any), the candidate's mean Dice is at
      least production's plus ``min_heldout_gain`` (0 = must not drop).
    """

    max_class_dice_drop: float = 0.01
    min_heldout_gain: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AcceptanceRule:
        return cls(**d)

    def decide(
        self,
        candidate_val: EvalSummary,
        production_val: EvalSummary | None,
        candidate_heldout: EvalSummary | None = None,
        production_heldout: EvalSummary | None = None,
    ) -> Decision:
        if production_val is None:
            return Decision(True, ("no production version yet: the first version is promoted",))
        reasons: list[str] = []
        ok = True
        for c, (new, old) in enumerate(zip(candidate_val.dice, production_val.dice, strict=True)):
            drop = old - new
            if drop > self.max_class_dice_drop:
                ok = False
                reasons.append(
                    f"class {c + 1}: locked-validation Dice fell {old:.4f} -> {new:.4f} "
                    f"(drop {drop:.4f} > allowed {self.max_class_dice_drop})"
                )
            else:
                reasons.append(f"class {c + 1}: locked-validation Dice {old:.4f} -> {new:.4f} (ok)")
        if candidate_heldout is not None and production_heldout is not None:
            gain = candidate_heldout.mean_dice - production_heldout.mean_dice
            verdict = "ok" if gain >= self.min_heldout_gain else "too low"
            if gain < self.min_heldout_gain:
                ok = False
            reasons.append(
                f"held-out corrections ({candidate_heldout.n_images}): mean Dice "
                f"{production_heldout.mean_dice:.4f} -> {candidate_heldout.mean_dice:.4f} ({verdict})"
            )
        else:
            reasons.append("no held-out corrections yet: judged on the locked validation set only")
        return Decision(ok, tuple(reasons))
