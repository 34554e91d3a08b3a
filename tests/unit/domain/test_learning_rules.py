"""The acceptance rule: promote only what does not get worse."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medloop.domain.gate import decide
from medloop.domain.labels import LabelSet
from medloop.domain.learning import EvalSummary, is_held_out
from medloop.domain.measurements import measure
from medloop.domain.settings import AcceptanceRule


def _s(*dice: float, mean: float | None = None) -> EvalSummary:
    return EvalSummary(
        len(dice),
        mean if mean is not None else float(np.mean(dice)),
        dice,
        dice,
        (math.nan,) * len(dice),
    )


def test_first_version_is_accepted() -> None:
    assert decide(AcceptanceRule(), _s(0.5), None).accepted


def test_small_drop_passes_large_drop_fails() -> None:
    rule = AcceptanceRule(max_class_dice_drop=0.01)
    assert decide(rule, _s(0.895), _s(0.90)).accepted
    d = decide(rule, _s(0.88), _s(0.90))
    assert not d.accepted
    assert "class 1" in d.reasons[0] and "0.9000 -> 0.8800" in d.reasons[0]


def test_any_class_dropping_fails_multiclass() -> None:
    assert not decide(AcceptanceRule(), _s(0.95, 0.70), _s(0.90, 0.80)).accepted


def test_heldout_corrections_must_not_drop() -> None:
    rule = AcceptanceRule()
    assert decide(rule, _s(0.9), _s(0.9), _s(0.7), _s(0.6)).accepted
    assert not decide(rule, _s(0.9), _s(0.9), _s(0.5), _s(0.6)).accepted


def test_held_out_is_stable_and_proportional() -> None:
    flags = [is_held_out(i, 0.2) for i in range(20)]
    assert sum(flags) == 4 and flags[4] and flags[9]
    assert not any(is_held_out(i, 0.0) for i in range(10))


def test_measurements_px_mm_components() -> None:
    lm = np.zeros((10, 10), np.uint8)
    lm[0:2, 0:2] = 1
    lm[5:8, 5:8] = 1
    lm[9, 9] = 2
    m = measure(lm, LabelSet.from_names(["a", "b"]), pixel_area_mm2=0.25)
    assert (m[0].area_px, m[0].components, m[0].largest_component_px) == (13, 2, 9)
    assert m[0].area_mm2 == pytest.approx(3.25)
    assert (m[1].area_px, m[1].components) == (1, 1)
    assert measure(lm, LabelSet.from_names(["a", "b"]))[0].area_mm2 is None
