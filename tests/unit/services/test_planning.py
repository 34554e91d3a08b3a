"""Planning a budgeted run: the step cap leaves headroom over the probe's estimate."""

from __future__ import annotations

import math

import pytest

from medloop.domain.labels import LabelSet
from medloop.domain.settings import TrainingOptions
from medloop.services import planning

from ..domain.test_plan import _fp


def test_a_budgeted_run_may_take_more_steps_than_the_probe_estimates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(planning, "_probe", lambda *a: 0.1)  # every candidate: 100 ms a step
    labels = LabelSet.from_names(["cell"])
    fp = _fp((256, 256), 20, 6)
    plan, _ = planning.plan_training(fp, TrainingOptions(budget_s=300), labels, "gray", 200.0)
    estimate = 2000  # 200 s at 100 ms
    assert plan.steps == math.ceil(estimate * planning.STEP_HEADROOM)
    assert plan.val_every == estimate // planning.VALIDATIONS  # validations spread over time
    assert any(f"at most {plan.steps} steps" in r for r in plan.reasons)
    fixed, _ = planning.plan_training(
        fp, TrainingOptions(budget_s=300, steps=700), labels, "gray", 200.0
    )
    assert fixed.steps == 700 and not any("at most" in r for r in fixed.reasons)


def test_a_finetune_ends_by_its_budget_when_the_policy_has_one() -> None:
    from medloop.domain.settings import LearningPolicy
    from medloop.services.planning import finetune_spec

    assert finetune_spec(LearningPolicy(), {}, 3, "cpu").max_seconds is None
    spec = finetune_spec(LearningPolicy(budget_s=90.0), {}, 3, "cpu")
    assert spec.max_seconds == 90.0 and spec.steps == 300
    retrain = LearningPolicy(budget_s=90.0, strategy="retrain")
    spec = finetune_spec(retrain, {"steps": 800}, 3, "cpu")
    assert spec.max_seconds == 90.0 and spec.steps == 800
