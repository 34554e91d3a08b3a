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
