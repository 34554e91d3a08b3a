"""The forgetting ablation's remedies can each be named on the command line."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from medloop.bench.forgetting import REMEDIES
from medloop.bench.loop import LoopConfig
from medloop.domain.settings import LearningPolicy


def test_every_remedy_can_be_picked_from_a_comma_separated_list() -> None:
    picked = ",".join(REMEDIES).split(",")  # what `--remedies` does with them
    assert picked == list(REMEDIES)


def test_each_remedy_is_a_valid_learning_policy() -> None:
    """Every remedy names policy fields only, with values the policy accepts together
    (e.g. a look-alike share and weight whose product stays below 1)."""
    for name, changes in REMEDIES.items():
        assert set(changes) <= set(LearningPolicy.model_fields), name
        policy = LearningPolicy.model_validate({**LearningPolicy().model_dump(), **changes})
        assert all(getattr(policy, k) == v for k, v in changes.items()), name


def test_no_remedy_but_the_look_alike_ones_replays_look_alikes_more() -> None:
    for name, changes in REMEDIES.items():
        assert (changes["lookalike_share"] > 0) == ("look-alikes" in name), name


def test_each_remedy_runs_its_rounds_from_the_same_base_on_the_same_corrections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every remedy gets a workspace of its own and the same K corrections per round;
    its row is its last round's, with gain and drop against the base."""
    from medloop.bench import forgetting

    calls: list[tuple[str, float, list[str], int]] = []

    class Setup:
        def __init__(self) -> None:
            self.header = {"base": {"target_dice": 0.1, "source_dice": 0.9}, "machine": "test"}
            self.pool = [f"s{i}" for i in range(6)]
            self.policy = LearningPolicy()
            self.console = Console(file=io.StringIO())

        def workspace(self, name: str) -> str:
            return name

    def finetune(
        setup: Any, ws: str, policy: LearningPolicy, picked: list[str], r: int
    ) -> dict[str, Any]:
        calls.append((ws, policy.lookalike_share, picked, r))
        return {
            "round": r,
            "candidate_target_dice": 0.1 + 0.3 * r,
            "candidate_source_dice": 0.9 - 0.01 * r,
            "train_seconds": 1.0,
            "promoted": True,
        }

    monkeypatch.setattr(forgetting, "prepare_loop", lambda cfg: Setup())
    monkeypatch.setattr(forgetting, "correct_and_finetune", finetune)
    cfg = LoopConfig(data=tmp_path, source_group="a", target_group="b", rounds=2, per_round=3)
    out = forgetting.run_forgetting(
        cfg, tmp_path / "f.json", ["distillation", "distillation + look-alikes x4"]
    )
    assert calls == [
        ("remedy-0", 0.0, ["s0", "s1", "s2"], 1),
        ("remedy-0", 0.0, ["s3", "s4", "s5"], 2),
        ("remedy-1", 0.1, ["s0", "s1", "s2"], 1),
        ("remedy-1", 0.1, ["s3", "s4", "s5"], 2),
    ]
    row = out["remedies"]["distillation + look-alikes x4"]
    assert row["round"] == 2 and [r["round"] for r in row["rounds"]] == [1, 2]
    assert row["target_gain"] == pytest.approx(0.6) and row["source_drop"] == pytest.approx(0.02)
    assert (
        json.loads((tmp_path / "f.json").read_text())["remedies"].keys() == out["remedies"].keys()
    )
