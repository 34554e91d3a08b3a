"""The forgetting ablation's remedies can each be named on the command line."""

from __future__ import annotations

from medloop.bench.forgetting import REMEDIES


def test_every_remedy_can_be_picked_from_a_comma_separated_list() -> None:
    picked = ",".join(REMEDIES).split(",")  # what `--remedies` does with them
    assert picked == list(REMEDIES)


def test_each_remedy_changes_only_the_learning_policy_fields_it_names() -> None:
    fields = {
        "distillation",
        "l2sp",
        "ema",
        "encoder_lr_scale",
        "lr",
        "correction_weight",
        "steps",
        "batch_size",
    }
    for name, changes in REMEDIES.items():
        assert set(changes) <= fields, name
