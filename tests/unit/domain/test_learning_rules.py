"""The gate decides on paired per-image differences; corrections are held out for it."""

from __future__ import annotations

import numpy as np
import pytest

from medloop.domain.gate import decide, paired_interval
from medloop.domain.labels import LabelSet
from medloop.domain.learning import is_held_out
from medloop.domain.measurements import measure
from medloop.domain.settings import AcceptanceRule


def _scores(n: int, k: int = 1, seed: int = 0) -> np.ndarray:
    """Production's per-image, per-class Dice on ``n`` locked images: realistic spread."""
    return np.random.default_rng(seed).uniform(0.6, 0.95, size=(n, k))


def _candidate(prod: np.ndarray, shift: float, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 100)
    return np.clip(prod + shift + rng.normal(0, noise, prod.shape), 0, 1)


def test_first_version_is_accepted() -> None:
    decision, checks = decide(AcceptanceRule(), _scores(5), None)
    assert decision.accepted and checks == []


@pytest.mark.parametrize("seed", range(20))
def test_a_truly_equal_candidate_is_not_rejected_by_noise(seed: int) -> None:
    # Per-image noise of 0.02 on 55 locked images (the DSB benchmark's locked half): the
    # paired interval is narrow enough to show "no worse than 0.01" every time.
    prod = _scores(55, seed=seed)
    decision, checks = decide(AcceptanceRule(), _candidate(prod, 0.0, 0.02, seed), prod)
    assert decision.accepted, decision.reasons
    assert checks[0].n == 55 and checks[0].lower >= -0.01


@pytest.mark.parametrize("seed", range(20))
def test_a_candidate_worse_by_more_than_the_margin_is_rejected(seed: int) -> None:
    prod = _scores(55, seed=seed)
    decision, checks = decide(AcceptanceRule(), _candidate(prod, -0.03, 0.02, seed), prod)
    assert not decision.accepted
    assert checks[0].upper < -0.01 and "worse" in decision.reasons[0]


def test_comparing_means_lets_a_worse_candidate_through_the_interval_does_not() -> None:
    # Worse by 0.015 with per-image noise 0.05 on 20 images: the mean difference lands
    # above -0.01 (what the old gate allowed) in a fair share of draws; the paired
    # interval rejects every one of them.
    lucky = 0
    for seed in range(40):
        prod = _scores(20, seed=seed)
        cand = _candidate(prod, -0.015, 0.05, seed)
        lucky += float((cand - prod).mean()) >= -0.01
        assert not decide(AcceptanceRule(), cand, prod)[0].accepted
    assert lucky >= 10


def test_every_class_must_hold_multiclass() -> None:
    prod = _scores(40, k=2)
    cand = prod.copy()
    cand[:, 0] += 0.05  # better on class 1 ...
    cand[:, 1] -= 0.05  # ... cannot buy a loss on class 2
    decision, checks = decide(AcceptanceRule(), np.clip(cand, 0, 1), prod)
    assert not decision.accepted
    assert [c.passed for c in checks] == [True, False]


def test_heldout_corrections_are_a_paired_check_too() -> None:
    prod = _scores(30)
    held_prod = np.array([[0.2], [0.3], [0.25], [0.4], [0.35]])
    ok, _ = decide(AcceptanceRule(), prod, prod, held_prod + 0.5, held_prod)
    assert ok.accepted
    worse, checks = decide(AcceptanceRule(), prod, prod, held_prod - 0.1, held_prod)
    assert not worse.accepted and checks[-1].name == "held-out corrections"


def test_fewer_than_five_held_out_corrections_are_reported_and_do_not_decide() -> None:
    prod = _scores(30)
    # Two held out: one learned well, one a little worse. The bootstrap's lower end of
    # two values is the worse one (-0.066); two images cannot show either verdict.
    held_prod = np.array([[0.40], [0.62]])
    held_cand = np.array([[0.66], [0.554]])
    ok, checks = decide(AcceptanceRule(), prod, prod, held_cand, held_prod)
    assert ok.accepted and checks[-1].basis == "reported" and checks[-1].lower < -0.01
    assert "n=2, fewer than 5: reported, not deciding; the locked set decides" in ok.reasons[-1]
    # One held-out image lost entirely does not veto either (BUSI's loop, round 1:
    # 0.462 -> 0.026 on its one held-out image while the candidate gained +0.027 on 42
    # malignant test images) ...
    lost, checks = decide(AcceptanceRule(), prod, prod, np.array([[0.026]]), np.array([[0.462]]))
    assert lost.accepted and checks[-1].passed and checks[-1].mean_difference < -0.4
    # ... while the locked set still decides alone.
    worse_locked = _candidate(prod, -0.03, 0.02, 0)
    rejected, checks = decide(AcceptanceRule(), worse_locked, prod, held_cand, held_prod)
    assert not rejected.accepted and not checks[0].passed and checks[-1].basis == "reported"
    # From MIN_INTERVAL_N images on, the interval decides: one bad image among five can veto.
    five_prod = np.array([[0.4], [0.5], [0.6], [0.5], [0.4]])
    five_cand = five_prod + np.array([[0.3], [0.2], [0.25], [0.2], [-0.5]])
    veto, checks = decide(AcceptanceRule(), prod, prod, five_cand, five_prod)
    assert checks[-1].basis == "interval" and checks[-1].mean_difference > 0
    assert not veto.accepted


def test_one_held_out_image_would_veto_a_better_candidate_by_noise() -> None:
    # Held-out per-image differences of a candidate truly better by +0.03, with the
    # spread of BUSI's lesions (sd 0.2): judging one image's difference against the
    # margin (the rule before) rejects it in over a third of the draws; the gate never.
    rng = np.random.default_rng(7)
    prod = _scores(30)
    vetoes = 0
    for _ in range(200):
        held_prod = rng.uniform(0.3, 0.8, size=(1, 1))
        held_cand = np.clip(held_prod + 0.03 + rng.normal(0, 0.2, size=(1, 1)), 0, 1)
        vetoes += float((held_cand - held_prod).mean()) < -0.01
        assert decide(AcceptanceRule(), prod, prod, held_cand, held_prod)[0].accepted
    assert vetoes >= 60


def test_a_locked_set_under_five_images_is_judged_on_its_mean() -> None:
    prod = _scores(3)
    worse, checks = decide(AcceptanceRule(), prod - 0.02, prod)
    assert not worse.accepted and checks[0].basis == "mean"
    assert (
        "n=3, too few for an interval: the mean is judged, margin 0.01) (worse)" in worse.reasons[0]
    )
    same, checks = decide(AcceptanceRule(), prod, prod)
    assert same.accepted and checks[0].basis == "mean"


def test_the_verdict_states_its_basis_and_is_reproducible() -> None:
    prod = _scores(20)
    cand = _candidate(prod, 0.0, 0.01, 3)
    a, checks = decide(AcceptanceRule(margin=0.02, confidence=0.9), cand, prod)
    b, _ = decide(AcceptanceRule(margin=0.02, confidence=0.9), cand, prod)
    assert a == b
    assert "n=20" in a.reasons[0] and "90% CI" in a.reasons[0] and "margin 0.02" in a.reasons[0]
    basis = checks[0].to_dict()
    assert basis["margin"] == 0.02 and basis["confidence"] == 0.9
    lo, hi = paired_interval(cand[:, 0] - prod[:, 0], 0.9)
    assert (basis["lower"], basis["upper"]) == (lo, hi)


def test_legacy_rules_keep_their_allowed_drop_as_the_margin() -> None:
    rule = AcceptanceRule.parse({"max_class_dice_drop": 0.02, "min_heldout_gain": 0.0})
    assert rule.margin == 0.02 and rule.confidence == 0.95


def test_held_out_is_stable_and_proportional() -> None:
    flags = [is_held_out(i, 0.2) for i in range(20)]
    assert sum(flags) == 4 and flags[4] and flags[9]
    assert not any(is_held_out(i, 0.0) for i in range(10))


def test_measurements_px_mm_components() -> None:
    lm = np.zeros((10, 10), np.uint8)
    lm[0:2, 0:2] = 1
    lm[5:8, 5:8] = 1
    lm[9, 9] = 2
    m = measure(lm, LabelSet.from_names(["a", "b"]), element_size=0.25)
    assert (m[0].area_px, m[0].components, m[0].largest_component_px) == (13, 2, 9)
    assert m[0].area_mm2 == pytest.approx(3.25)
    assert (m[1].area_px, m[1].components) == (1, 1)
    assert measure(lm, LabelSet.from_names(["a", "b"]))[0].area_mm2 is None


def test_promoting_over_the_gates_rejection_needs_a_reason() -> None:
    from medloop.domain.gate import promotion_reason
    from medloop.domain.model import VersionStatus
    from medloop.domain.ports import VersionRecord
    from medloop.errors import ConfigError

    from ...artifact_store_contract import MANIFEST, lineage

    rejected = VersionRecord(
        "v0003", VersionStatus.REJECTED, MANIFEST, lineage(), {}, {}, {"accepted": False}
    )
    with pytest.raises(ConfigError, match="needs a reason"):
        promotion_reason(rejected, "alice", "  ")
    assert (
        promotion_reason(rejected, "alice", "drift in the locked set")
        == "promoted by alice over the gate's rejection: drift in the locked set"
    )
    accepted = VersionRecord(
        "v0002", VersionStatus.RETIRED, MANIFEST, lineage(), {}, {}, {"accepted": True}
    )
    assert promotion_reason(accepted, "bob", None) == "promoted by bob"
