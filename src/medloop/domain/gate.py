"""The promotion gate as a pure function: a candidate against production, per the rule.

The engine calls :func:`decide` once per candidate and hands the verdict to the
:class:`~medloop.domain.ports.ArtifactStore`, which writes the report and promotes or
rejects in one step.
"""

from __future__ import annotations

from medloop.domain.learning import Decision, EvalSummary
from medloop.domain.settings import AcceptanceRule

__all__ = ["decide"]


def decide(
    rule: AcceptanceRule,
    candidate_val: EvalSummary,
    production_val: EvalSummary | None,
    candidate_heldout: EvalSummary | None = None,
    production_heldout: EvalSummary | None = None,
) -> Decision:
    """Whether ``rule`` promotes the candidate; one reason per class and per check.

    Args:
        rule: the project's acceptance rule.
        candidate_val, production_val: both versions on the same locked validation
            set; ``production_val`` is ``None`` when nothing is in production yet
            (the first version is always promoted).
        candidate_heldout, production_heldout: both versions on the held-out
            corrections, when there are any.
    """
    if production_val is None:
        return Decision(True, ("no production version yet: the first version is promoted",))
    reasons: list[str] = []
    ok = True
    for c, (new, old) in enumerate(zip(candidate_val.dice, production_val.dice, strict=True)):
        drop = old - new
        if drop > rule.max_class_dice_drop:
            ok = False
            reasons.append(
                f"class {c + 1}: locked-validation Dice fell {old:.4f} -> {new:.4f} "
                f"(drop {drop:.4f} > allowed {rule.max_class_dice_drop})"
            )
        else:
            reasons.append(f"class {c + 1}: locked-validation Dice {old:.4f} -> {new:.4f} (ok)")
    if candidate_heldout is not None and production_heldout is not None:
        gain = candidate_heldout.mean_dice - production_heldout.mean_dice
        verdict = "ok" if gain >= rule.min_heldout_gain else "too low"
        if gain < rule.min_heldout_gain:
            ok = False
        reasons.append(
            f"held-out corrections ({candidate_heldout.n_images}): mean Dice "
            f"{production_heldout.mean_dice:.4f} -> {candidate_heldout.mean_dice:.4f} ({verdict})"
        )
    else:
        reasons.append("no held-out corrections yet: judged on the locked validation set only")
    return Decision(ok, tuple(reasons))
