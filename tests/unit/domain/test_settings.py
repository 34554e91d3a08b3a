"""Project settings and job options: one definition of each default and bound, checked once."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from medloop.domain.jobs import (
    FinetuneJob,
    FinetuneOptions,
    TrainJob,
    TrainOverrides,
    parse_job_spec,
)
from medloop.domain.labels import Label, LabelSet
from medloop.domain.settings import (
    NAMED_BUDGETS,
    LearningPolicy,
    ProjectSettings,
    Strategy,
    TrainingOptions,
    parse_budget,
)
from medloop.errors import ConfigError

LABELS = LabelSet.from_names(["nucleus", "membrane"]).labels


def test_defaults_and_json_round_trip() -> None:
    s = ProjectSettings(labels=LABELS)
    assert s.learning.correction_weight == 64.0 and s.finetune_every == 10
    assert s.learning.strategy is Strategy.WEIGHTED_REPLAY
    data = s.to_json()
    assert data["learning"]["strategy"] == "weighted-replay"
    assert data["training"]["budget_s"] == 300.0 and data["training"]["channels"] is None
    assert ProjectSettings.parse(data) == s
    assert s.label_set.num_classes == 3


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"learning": {"correction_weight": 0}}, "learning.correction_weight"),
        ({"learning": {"held_out_share": 1.0}}, "learning.held_out_share"),
        ({"learning": {"steps": -5}}, "learning.steps"),
        ({"learning": {"lookalike_share": 0.2, "lookalike_weight": 5}}, "lookalike_share x"),
        ({"learning": {"lookalike_weight": 0.5}}, "learning.lookalike_weight"),
        ({"training": {"patch_size": [100000, 8]}}, "training.patch_size"),
        ({"training": {"patch_size": [90], "channels": [8, 16, 32]}}, "multiple of 4"),
        ({"training": {"budget_s": 1}}, "training.budget_s"),
        ({"training": {"channels": [8]}}, "training.channels"),
        ({"finetune_every": -1}, "finetune_every"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_settings_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        ProjectSettings.parse({"labels": [lab.to_dict() for lab in LABELS], **data})


def test_labels_must_be_one_to_k_with_valid_colours() -> None:
    with pytest.raises(ConfigError, match=r"1\.\.K"):
        ProjectSettings.parse({"labels": [{"value": 2, "name": "a", "color": "#ff0000"}]})
    with pytest.raises(ValidationError):
        Label(value=1, name="a", color="red")


def test_settings_are_immutable() -> None:
    s = ProjectSettings(labels=LABELS)
    with pytest.raises(ValidationError):
        s.learning.steps = 5  # type: ignore[misc]


def test_job_specs_are_typed_per_kind() -> None:
    spec = parse_job_spec("finetune", {"steps": 50, "correction_weight": 4})
    assert isinstance(spec, FinetuneJob) and spec.options.steps == 50
    assert parse_job_spec("train", None) == TrainJob()
    with pytest.raises(ConfigError, match="steps"):
        parse_job_spec("train", {"steps": -5})
    with pytest.raises(ConfigError, match="patch_size"):
        parse_job_spec("train", {"patch_size": 100000})
    with pytest.raises(ConfigError, match="patch_size"):
        parse_job_spec("train", {"patch_size": [100000, 100000]})
    with pytest.raises(ConfigError, match="bogus"):
        parse_job_spec("finetune", {"bogus": 1})
    with pytest.raises(ConfigError, match="'nope'"):
        parse_job_spec("nope", {})


def test_overrides_apply_on_top_of_the_project_and_are_validated_together() -> None:
    base = TrainingOptions(channels=(16, 32, 64, 128, 256))
    assert TrainOverrides(steps=30, patch_size=(64, 64)).apply(base).steps == 30
    with pytest.raises(ConfigError, match="multiple of 16"):
        TrainOverrides(patch_size=(40, 40)).apply(base)


def test_budgets_parse() -> None:
    assert parse_budget("5m") == 300 and parse_budget("90s") == 90 and parse_budget("1.5h") == 5400
    assert parse_budget("quick") == NAMED_BUDGETS["quick"] and parse_budget("42") == 42
    for bad in ("", "5 parsecs", "-1m", "0"):
        with pytest.raises(ConfigError, match="budget"):
            parse_budget(bad)
    policy = FinetuneOptions(lr=1e-4, trigger="corrections", corrections=20).apply(LearningPolicy())
    assert policy.lr == 1e-4 and policy.correction_weight == 64.0


def test_a_finetune_budget_comes_from_the_policy_or_the_job() -> None:
    assert LearningPolicy().budget_s is None  # steps alone by default
    policy = FinetuneOptions(budget_s=90.0).apply(LearningPolicy(budget_s=600.0))
    assert policy.budget_s == 90.0 and policy.steps == 300
    with pytest.raises(ConfigError, match="budget_s"):
        FinetuneOptions.parse({"budget_s": 5})  # less than the shortest budget
