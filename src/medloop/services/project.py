"""A project's settings as stored beside its registry (``REGISTRY/project.json``).

The project pins the reference dataset (root, train keys, the locked validation
keys), the labels, the learning policy and the acceptance rule, so every later
fine-tune and gate uses exactly the same data and rules.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medloop.domain.labels import LabelSet
from medloop.domain.learning import AcceptanceRule, LearningPolicy
from medloop.errors import ConfigError

__all__ = ["ProjectConfig", "load_project", "save_project"]

PROJECT_FILE = "project.json"


@dataclass(frozen=True)
class ProjectConfig:
    """What a registry's project is about."""

    labels: LabelSet
    reference_root: str
    train_keys: tuple[str, ...]
    val_keys: tuple[str, ...]
    policy: LearningPolicy
    rule: AcceptanceRule
    base_hyperparameters: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": self.labels.to_dicts(),
            "reference_root": self.reference_root,
            "train_keys": list(self.train_keys),
            "val_keys": list(self.val_keys),
            "policy": self.policy.to_dict(),
            "rule": self.rule.to_dict(),
            "base_hyperparameters": self.base_hyperparameters,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProjectConfig:
        return cls(
            labels=LabelSet.from_dicts(d["labels"]),
            reference_root=d["reference_root"],
            train_keys=tuple(d["train_keys"]),
            val_keys=tuple(d["val_keys"]),
            policy=LearningPolicy.from_dict(d["policy"]),
            rule=AcceptanceRule.from_dict(d["rule"]),
            base_hyperparameters=dict(d.get("base_hyperparameters", {})),
        )


def save_project(registry_root: Path, project: ProjectConfig) -> None:
    path = registry_root / PROJECT_FILE
    tmp = registry_root / f".{PROJECT_FILE}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(project.to_dict(), fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_project(registry_root: Path) -> ProjectConfig:
    path = registry_root / PROJECT_FILE
    if not path.exists():
        raise ConfigError(
            f"{registry_root} has no project: run `medloop train DATA --registry {registry_root}` first"
        )
    with open(path, encoding="utf-8") as fh:
        return ProjectConfig.from_dict(json.load(fh))
