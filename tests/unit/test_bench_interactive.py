"""The clicks-to-Dice figures: NoC and Dice after k clicks, from a simulated clinician."""

from __future__ import annotations

import numpy as np
import pytest

from medloop.bench.interactive import MAX_CLICKS, ClickCurve


def test_noc_counts_clicks_to_the_target_and_twenty_where_never_reached() -> None:
    dice = np.zeros((3, MAX_CLICKS + 1))
    dice[0, :] = 0.9  # the automatic prediction is good enough already
    dice[1, 2:] = 0.86  # two clicks to 85 %, never 90 %
    dice[2, 5:] = 0.95
    curve = ClickCurve(dice, [0.01, 0.03])
    assert curve.noc(0.85) == (0 + 2 + 5) / 3
    assert curve.noc(0.90) == (0 + MAX_CLICKS + 5) / 3
    summary = curve.summary()
    assert summary["dice_3"] == (0.9 + 0.86 + 0) / 3 and summary["images"] == 3
    assert summary["seconds_per_click_p50"] == 0.02
    assert summary["never85"] == 0.0 and summary["never90"] == pytest.approx(1 / 3)
