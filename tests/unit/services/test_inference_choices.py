"""The inference options chosen on the selection set: test-time flips, then post-processing."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from medloop.domain.labels import LabelSet
from medloop.domain.model import ModelManifest, NetworkSpec, PreprocessSpec
from medloop.services import inference_options
from medloop.services.pairs import PairCache

from ...fakes import MemoryTrainingData

MANIFEST = ModelManifest(
    NetworkSpec(1, 2, (8, 16), num_res_units=1),
    PreprocessSpec(),
    LabelSet.from_names(["disc"]),
    (32, 32),
    plan={"mirror_axes": [1], "keep_largest_candidates": [1], "reasons": ["planned"]},
)


def _truths(n: int = 4) -> tuple[MemoryTrainingData, list[np.ndarray]]:
    data, masks = MemoryTrainingData(), []
    for i in range(n):
        mask = np.zeros((32, 32), np.uint8)
        mask[8 + i : 20 + i, 6:18] = 1
        data.add_reference(f"s{i}", (mask * 200).astype(np.uint8)[..., None], mask, "val")
        masks.append(mask)
    return data, masks


def _network_answers(
    monkeypatch: pytest.MonkeyPatch, plain: list[np.ndarray], flipped: list[np.ndarray]
) -> list[tuple[int, ...]]:
    """The label maps "the network" gives without and with test-time flips."""
    runs: list[tuple[int, ...]] = []

    def fake(manifest: ModelManifest, *args: Any) -> list[np.ndarray]:
        runs.append(manifest.test_time_flips)
        return flipped if manifest.test_time_flips else plain

    monkeypatch.setattr(inference_options, "raw_label_maps", fake)
    return runs


def _choose(data: MemoryTrainingData, manifest: ModelManifest = MANIFEST) -> ModelManifest:
    select = list(data.reference())
    return inference_options.choose_inference_options(manifest, {}, select, PairCache(data), "cpu")


def _shifted(masks: list[np.ndarray], rows: int) -> list[np.ndarray]:
    return [np.roll(m, rows, axis=0) for m in masks]


def test_flips_are_kept_when_the_selection_set_scores_higher(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data, masks = _truths()
    runs = _network_answers(monkeypatch, plain=_shifted(masks, 3), flipped=_shifted(masks, 1))
    chosen = _choose(data)
    assert runs == [(), (1,)]  # the network runs twice; only the axis training flipped
    assert chosen.test_time_flips == (1,)
    reason = chosen.plan["reasons"][-1]
    assert reason.startswith("test-time flips along axes [1] (2 passes): selection Dice 0.750")
    assert reason.endswith(", kept")


def test_a_tie_does_not_pay_for_the_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    data, masks = _truths()
    _network_answers(monkeypatch, plain=masks, flipped=masks)
    tie = _choose(data)
    assert tie.test_time_flips == () and tie.plan["reasons"][-1].endswith("not kept")


def test_post_processing_is_scored_on_the_chosen_maps_without_running_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data, masks = _truths()
    specks = [m.copy() for m in masks]
    for m in specks:
        m[28:30, 28:30] = 1  # a stray component the largest-component rule removes
    runs = _network_answers(monkeypatch, plain=specks, flipped=specks)
    chosen = _choose(data)
    assert chosen.keep_largest == (1,) and len(runs) == 2
    # Already clean: keeping the largest changes nothing, and a tie keeps it.
    _network_answers(monkeypatch, plain=masks, flipped=masks)
    assert _choose(data).keep_largest == (1,)


def test_small_components_go_only_when_that_raises_the_label(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data, masks = _truths()
    plan = {"mirror_axes": [], "min_size_candidates": [[1, 100]], "reasons": []}
    manifest = replace(MANIFEST, plan=plan)
    specks = [m.copy() for m in masks]
    for m in specks:
        m[28:30, 28:30] = 1  # 4 px, below every share of 100 px
    _network_answers(monkeypatch, plain=specks, flipped=specks)
    assert _choose(data, manifest).min_size == ((1, 25),)
    _network_answers(monkeypatch, plain=masks, flipped=masks)
    assert _choose(data, manifest).min_size == ()


def test_a_plan_that_names_no_axes_tries_them_all_and_nothing_to_choose_runs_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data, masks = _truths()
    runs = _network_answers(monkeypatch, plain=_shifted(masks, 2), flipped=masks)
    assert _choose(data, replace(MANIFEST, plan={})).test_time_flips == (0, 1)
    assert runs[-1] == (0, 1)
    runs.clear()
    nothing = replace(MANIFEST, plan={"mirror_axes": []})
    assert _choose(data, nothing) is nothing and runs == []


def test_flips_are_tried_only_when_their_passes_fit_a_share_of_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data, _ = _truths()
    samples = list(data.reference())
    cache = PairCache(data)
    monkeypatch.setattr(inference_options, "_pass_seconds", lambda *a: (2.0, 3.0))
    both = replace(MANIFEST, plan={})  # 2 axes: 4 passes; extra 4 * 2 + 3 * 3 = 17 s
    cost = inference_options.inference_cost(both, samples, samples, cache, "cpu", 100.0)
    assert cost == inference_options.InferenceCost(5.0 + 17.0, True, None, select_pass=2.0)
    tight = inference_options.inference_cost(both, samples, samples, cache, "cpu", 60.0)
    assert not tight.try_flips and tight.seconds == 5.0 and tight.select_pass == 2.0
    assert tight.note == (
        "test-time flips along axes [0, 1] not tried: their 4 passes would take ~17 s, "
        "more than 20% of the 60 s budget"
    )
    none = replace(MANIFEST, plan={"mirror_axes": []})
    assert inference_options.inference_cost(none, samples, samples, cache, "cpu", 60.0) == (
        inference_options.InferenceCost(5.0, False, None, select_pass=2.0)
    )
    # Fixed steps, no budget: nothing is set aside and the flips are tried.
    free = inference_options.inference_cost(both, samples, samples, cache, "cpu", None)
    assert free == inference_options.InferenceCost(0.0, True, None)  # select pass not timed


def test_a_note_instead_of_flips_is_kept_with_the_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    data, masks = _truths()
    runs = _network_answers(monkeypatch, plain=masks, flipped=masks)
    select = list(data.reference())
    chosen = inference_options.choose_inference_options(
        MANIFEST, {}, select, PairCache(data), "cpu", flips_note="not tried: too slow"
    )
    assert runs == [()] and chosen.test_time_flips == ()
    assert chosen.plan["reasons"][-1] == "not tried: too slow"


def test_a_pass_is_timed_on_the_real_network_and_scaled_by_size() -> None:
    data, _ = _truths(6)
    samples = list(data.reference())
    select, locked = inference_options._pass_seconds(
        MANIFEST, samples[:3], samples, PairCache(data), "cpu"
    )
    assert 0 < select < locked == pytest.approx(2 * select)  # same sizes: twice the images
