"""Projects on the server: settings in the database, models in a registry folder."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from medloop.domain.labels import LabelSet
from medloop.domain.learning import AcceptanceRule, LearningPolicy
from medloop.errors import NotFoundError
from medloop.services.training import TrainOptions
from medloop.storage import repositories as repo
from medloop.storage.models import Project

__all__ = ["find_project", "label_set", "learning_policy", "train_options"]


def find_project(session: Session, ref: str) -> Project:
    """A project by id or by name."""
    try:
        return repo.get_project(session, ref)
    except NotFoundError:
        pass
    try:
        return repo.get_project_by_name(session, ref)
    except NotFoundError as err:
        raise NotFoundError(f"no project {ref!r}") from err


def label_set(project: Project) -> LabelSet:
    return LabelSet.from_dicts(project.labels)


def learning_policy(learning: dict[str, Any]) -> LearningPolicy:
    return LearningPolicy(
        correction_weight=float(learning.get("correction_weight", 16.0)),
        replay_size=int(learning.get("replay_size", 256)),
        steps=int(learning.get("steps", 300)),
        lr=float(learning.get("lr", 3e-4)),
        held_out_share=float(learning.get("held_out_share", 0.2)),
    )


def train_options(project: Project, overrides: dict[str, Any], device: str | None) -> TrainOptions:
    """Training options from the project's settings, with a job's overrides on top."""
    learning = {**project.learning, **{k: v for k, v in overrides.items() if v is not None}}
    acc = learning.get("acceptance", {})
    return TrainOptions(
        labels=tuple(lab["name"] for lab in project.labels),
        channels=tuple(int(c) for c in learning.get("channels", (16, 32, 64, 128, 256))),
        patch_size=int(learning.get("patch_size", 256)),
        steps=int(learning.get("train_steps", 2000)),
        color=str(learning.get("color", "auto")),
        device=device,
        val_every=int(learning.get("val_every", 200)),
        policy=learning_policy(learning),
        rule=AcceptanceRule(
            max_class_dice_drop=float(acc.get("max_class_dice_drop", 0.01)),
            min_heldout_gain=float(acc.get("min_heldout_gain", 0.0)),
        ),
    )
