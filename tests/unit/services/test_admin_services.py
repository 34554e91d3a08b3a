"""Users' token lifetimes and guards, settings changes as merge patches, automatic splits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from medloop.domain.settings import ProjectSettings
from medloop.errors import ConfigError, ConflictError, InputError, NotFoundError
from medloop.services.projects import Projects, merge_patch, settings_diff
from medloop.services.reference_import import auto_splits
from medloop.services.users import Users
from medloop.storage import Database
from medloop.storage import repositories as repo


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_token_lifetimes_by_kind_and_choice(database: Database) -> None:
    clock = Clock()
    users = Users(database, person_token_days=30, clock=clock)
    _, secret = users.add("dr-a", "viewer")
    assert users.tokens("dr-a")[0].expires_at == clock.now + timedelta(days=30)
    users.add("scanner", "annotator", kind="device")
    assert users.tokens("scanner")[0].expires_at is None
    users.add("dr-b", "viewer", expires_days=None)
    assert users.tokens("dr-b")[0].expires_at is None
    token, _ = users.issue("scanner", "weekly", expires_days=7)
    assert token.expires_at == clock.now + timedelta(days=7)
    for bad in (0, -1, 5000):
        with pytest.raises(InputError, match="1 to 3650 days"):
            users.issue("dr-a", expires_days=bad)
    assert users.authenticate(secret) is not None
    clock.now += timedelta(days=31)
    assert users.authenticate(secret) is None  # expired
    assert (
        Users(database, person_token_days=0, clock=clock).add("dr-c", "viewer")[0].kind == "person"
    )
    assert users.tokens("dr-c")[0].expires_at is None  # 0: people's tokens do not expire


def test_last_use_is_written_at_most_once_a_minute(database: Database) -> None:
    clock = Clock()
    users = Users(database, clock=clock)
    _, secret = users.add("dr-a", "viewer")
    users.authenticate(secret)
    first = users.tokens("dr-a")[0].last_used_at
    assert first == clock.now
    clock.now += timedelta(seconds=30)
    users.authenticate(secret)
    assert users.tokens("dr-a")[0].last_used_at == first
    clock.now += timedelta(seconds=31)
    users.authenticate(secret)
    assert users.tokens("dr-a")[0].last_used_at == clock.now
    assert users.get("dr-a").last_used_at == clock.now


def test_the_last_admin_of_every_project_stays(database: Database, project_id: str) -> None:
    users = Users(database)
    users.add("root", "admin")
    for change in ({"disabled": True}, {"role": "annotator"}, {"project": project_id}):
        with pytest.raises(ConflictError, match="last enabled admin"):
            users.update("root", **change)  # type: ignore[arg-type]
    users.add("second", "admin")
    before, after = users.update("root", disabled=True)
    assert not before.disabled and after.disabled
    with pytest.raises(NotFoundError, match="no user 'ghost'"):
        users.update("ghost", disabled=True)
    with pytest.raises(NotFoundError):
        users.revoke("second", users.tokens("root")[0].id)  # root's token, asked as second's


def test_settings_change_by_merge_patch(database: Database, project_id: str) -> None:
    projects = Projects(database)
    project = projects.find(project_id)
    change = projects.update(project, {"learning": {"steps": 50}, "training": {"steps": 10}})
    assert change.view.project.settings.learning.steps == 50
    assert change.changes == {
        "learning.steps": {"before": 300, "after": 50},
        "training.steps": {"before": None, "after": 10},
    }
    back = projects.update(project, {"training": {"steps": None}})
    assert back.view.project.settings.training.steps is None
    assert projects.update(project, {"finetune_every": 5}).changes == {}  # already 5
    with pytest.raises(ConfigError, match="budget_s"):
        projects.update(project, {"training": {"budget_s": 2}})
    two = [
        {"value": 1, "name": "cell", "color": "#00ff00"},
        {"value": 2, "name": "membrane", "color": "#0000ff"},
    ]
    assert projects.update(project, {"labels": two}).changes["labels"]["after"] == two
    projects.update(project, {"labels": two[:1]})
    with database.write() as s:  # the project now holds a label map: values are fixed
        image, _ = repo.create_image(
            s,
            project_id=project_id,
            sha256="a" * 64,
            blob_key="a" * 64,
            filename="x.png",
            content_type="image/png",
            width=4,
            height=4,
            channels=1,
        )
        repo.add_reference_pair(
            s,
            project_id=project_id,
            image_id=image.id,
            mask_blob_key="b" * 64,
            mask_sha256="b" * 64,
        )
    with pytest.raises(ConflictError, match="fixed"):
        projects.update(project, {"labels": two})
    renamed = projects.update(
        project, {"labels": [{"value": 1, "name": "nucleus", "color": "#123456"}]}
    )
    assert renamed.changes["labels"]["after"][0]["color"] == "#123456"


def test_merge_patch_and_diff_are_plain() -> None:
    assert merge_patch({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": None, "e": 4}, "d": None}) == {
        "a": {"c": 2, "e": 4}
    }
    assert merge_patch({"a": 1}, {"a": [1, 2]}) == {"a": [1, 2]}
    before = ProjectSettings.parse({"labels": [{"value": 1, "name": "x", "color": "#ff0000"}]})
    after = ProjectSettings.parse(
        {"labels": [{"value": 1, "name": "x", "color": "#ff0000"}], "acceptance": {"margin": 0.02}}
    )
    assert settings_diff(before, after) == {"acceptance.margin": {"before": 0.01, "after": 0.02}}
    assert settings_diff(before, before) == {}


def test_automatic_splits_are_stable_and_keep_a_validation_pair() -> None:
    keys = [f"images/{i}.png" for i in range(25)]
    splits = auto_splits(keys)
    assert list(splits.values()).count("val") == 2
    assert auto_splits(reversed(keys)) == splits
    assert auto_splits(["a", "b"]) in ({"a": "val", "b": "train"}, {"a": "train", "b": "val"})
    assert auto_splits(["only"]) == {"only": "train"}
