"""The inference options chosen on the selection set: test-time flips, then post-processing."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from medloop.domain.labels import LabelSet
from medloop.domain.learning import EvalSummary
from medloop.domain.model import ModelManifest, NetworkSpec, PreprocessSpec
from medloop.domain.ports import PairSample
from medloop.ml.network import build_network
from medloop.services import planning

MANIFEST = ModelManifest(
    NetworkSpec(1, 2, (8, 16), num_res_units=1),
    PreprocessSpec(),
    LabelSet.from_names(["disc"]),
    (32, 32),
    plan={"mirror_axes": [1], "reasons": ["planned"]},
)


def _scores(monkeypatch: pytest.MonkeyPatch, flipped: float, plain: float = 0.80) -> list[Any]:
    """Scores every trial manifest as ``flipped`` when it flips, ``plain`` otherwise."""
    seen: list[Any] = []

    def fake(predictor: Any, samples: Any, cache: Any) -> tuple[EvalSummary, list[Any]]:
        m = predictor.manifest
        seen.append(m.test_time_flips)
        d = flipped if m.test_time_flips else plain
        return EvalSummary(len(samples), d, (d,), (d,), (1.0,)), []

    monkeypatch.setattr(planning, "evaluate_samples", fake)
    return seen


def _choose(manifest: ModelManifest = MANIFEST) -> ModelManifest:
    state = build_network(manifest.network).state_dict()
    select = [PairSample("a", "x", "y", "val")]
    return planning.choose_postprocessing(manifest, state, select, None, "cpu")  # type: ignore[arg-type]


def test_flips_are_kept_only_when_the_selection_set_scores_higher(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = _scores(monkeypatch, flipped=0.83)
    chosen = _choose()
    assert seen == [(), (1,)]  # only the axis training flipped along is tried
    assert chosen.test_time_flips == (1,)
    assert chosen.plan["reasons"][-1] == (
        "test-time flips along axes [1] (2 passes): selection Dice 0.800 -> 0.830, kept"
    )
    _scores(monkeypatch, flipped=0.80)  # a tie costs passes for nothing
    tie = _choose()
    assert tie.test_time_flips == () and tie.plan["reasons"][-1].endswith("not kept")


def test_a_plan_that_names_no_axes_tries_them_all_and_one_that_flips_none_tries_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = _scores(monkeypatch, flipped=0.9)
    assert _choose(replace(MANIFEST, plan={})).test_time_flips == (0, 1)
    assert seen[-1] == (0, 1)
    seen.clear()
    unflipped = replace(MANIFEST, plan={"mirror_axes": []})
    assert _choose(unflipped) is unflipped and seen == []  # nothing to choose: not scored
