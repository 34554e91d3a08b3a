"""The CLI's project file, ``REGISTRY/project.json``: settings and the pinned reference data.

The command line has no database, so a registry folder keeps its project here: the
:class:`~medloop.domain.settings.ProjectSettings` and which dataset (folder, group
and the keys of its ``train`` and ``val`` pairs) the versions were trained on, so
that every later fine-tune and gate uses exactly the same reference data. The
server keeps the same settings in its database instead.

Files written before the settings were typed (no ``format`` field: ``labels``,
``policy``, ``rule``, ``base_hyperparameters``) are read and converted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medloop.domain.settings import (
    AcceptanceRule,
    LearningPolicy,
    ProjectSettings,
    TrainingOptions,
)
from medloop.durable import atomic_write_json
from medloop.errors import ConfigError

__all__ = ["PROJECT_FILE", "FolderProject", "load_folder_project", "save_folder_project"]

PROJECT_FILE = "project.json"
FORMAT = 2


@dataclass(frozen=True)
class FolderProject:
    """A CLI project: its settings and the reference dataset it is pinned to."""

    settings: ProjectSettings
    reference_root: str
    train_keys: tuple[str, ...]
    val_keys: tuple[str, ...]
    group: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "settings": self.settings.to_json(),
            "reference": {
                "root": self.reference_root,
                "group": self.group,
                "train_keys": list(self.train_keys),
                "val_keys": list(self.val_keys),
            },
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FolderProject:
        if d.get("format") is None:
            return _from_legacy(d)
        if d["format"] != FORMAT:
            raise ConfigError(f"unsupported project file format {d['format']!r}")
        ref = d["reference"]
        return cls(
            settings=ProjectSettings.parse(d["settings"]),
            reference_root=str(ref["root"]),
            train_keys=tuple(ref["train_keys"]),
            val_keys=tuple(ref["val_keys"]),
            group=ref.get("group"),
        )


def _pick(d: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k in fields and v is not None}


def _from_legacy(d: dict[str, Any]) -> FolderProject:
    """A project file of medloop before typed settings."""
    options = dict(d.get("base_hyperparameters", {}).get("options", {}))
    if isinstance(options.get("patch_size"), int):  # one side of a square, then
        options["patch_size"] = [options["patch_size"]]
    settings = ProjectSettings.parse(
        {
            "labels": d["labels"],
            "learning": _pick(d.get("policy", {}), LearningPolicy.model_fields),
            "acceptance": _pick(d.get("rule", {}), AcceptanceRule.model_fields),
            "training": _pick(options, TrainingOptions.model_fields),
        }
    )
    return FolderProject(
        settings=settings,
        reference_root=str(d["reference_root"]),
        train_keys=tuple(d["train_keys"]),
        val_keys=tuple(d["val_keys"]),
        group=options.get("group"),
    )


def save_folder_project(registry_root: Path, project: FolderProject) -> None:
    """Write ``REGISTRY/project.json`` atomically."""
    registry_root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(registry_root / PROJECT_FILE, project.to_dict())


def load_folder_project(registry_root: Path) -> FolderProject:
    """Read ``REGISTRY/project.json``.

    Raises:
        ConfigError: there is none (nothing was trained in this registry) or it is invalid.
    """
    path = registry_root / PROJECT_FILE
    if not path.is_file():
        raise ConfigError(
            f"{registry_root} has no project: run `medloop train DATA --registry {registry_root}` first"
        )
    try:
        with open(path, encoding="utf-8") as fh:
            return FolderProject.from_dict(json.load(fh))
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{path}: not a valid project file ({err})") from err
