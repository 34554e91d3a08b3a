"""Projects on the server: their typed settings in the database, their production version.

A project's settings change as a whole document validated again
(:class:`~medloop.domain.settings.ProjectSettings`); a change reports what it changed,
before and after, for the audit trail. Jobs read the settings when they start, so a
change applies to the next job and never to a running one. Label values are fixed
once the project holds label maps (reference pairs, analyses, model versions); their
names and colours may still change.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from medloop.domain.records import ProjectRecord
from medloop.domain.settings import ProjectSettings
from medloop.errors import ConflictError
from medloop.storage import repo_versions
from medloop.storage import repositories as repo
from medloop.storage.database import Database
from medloop.storage.models import utcnow

__all__ = ["Change", "ProjectView", "Projects", "merge_patch", "settings_diff"]


@dataclass(frozen=True)
class ProjectView:
    """A project and the name of its production version (``None`` before the first)."""

    project: ProjectRecord
    production_version: str | None


@dataclass(frozen=True)
class Change:
    """A settings change: the project after it, and each changed field's before and after."""

    view: ProjectView
    changes: dict[str, dict[str, Any]]


def merge_patch(target: Any, patch: Any) -> Any:
    """``target`` with a JSON merge patch (RFC 7386) applied: ``null`` removes a field."""
    if not isinstance(patch, Mapping):
        return patch
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def settings_diff(before: ProjectSettings, after: ProjectSettings) -> dict[str, dict[str, Any]]:
    """``{"learning.steps": {"before": 300, "after": 100}, ...}`` for every changed field."""
    old, new = _flatten(before.to_json()), _flatten(after.to_json())
    return {
        key: {"before": old.get(key), "after": new.get(key)}
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    }


class Projects:
    """Create, find, list, change and archive projects.

    Args:
        db: the database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, name: str, settings: ProjectSettings) -> ProjectView:
        """A new project (``ConflictError`` if the name is taken)."""
        with self.db.write() as s:
            return ProjectView(repo.create_project(s, name, settings), None)

    def find(self, ref: str) -> ProjectRecord:
        """A project by id or name, archived or not (``NotFoundError`` otherwise)."""
        with self.db.read() as s:
            return repo.find_project(s, ref)

    def view(self, project: ProjectRecord) -> ProjectView:
        """``project`` with its production version."""
        with self.db.read() as s:
            return ProjectView(project, repo_versions.production_version(s, project.id))

    def visible(
        self, only: Collection[str] | None = None, archived: bool | None = False
    ) -> list[ProjectView]:
        """Projects by name (with ``only``, those ids), each with its production version.

        ``archived``: ``False`` the active ones, ``True`` the archived ones, ``None`` all.
        """
        with self.db.read() as s:
            projects = repo.list_projects(s, only, archived)
            production = repo_versions.production_versions(s)
        return [ProjectView(p, production.get(p.id)) for p in projects]

    def update(self, project: ProjectRecord, patch: Mapping[str, Any]) -> Change:
        """Apply a JSON merge patch to the project's settings.

        Raises:
            ConfigError: the patched settings do not validate (the field is named).
            ConflictError: label values would change while the project holds label maps.
        """
        with self.db.write() as s:
            current = repo.get_project(s, project.id)
            merged = merge_patch(current.settings.to_json(), dict(patch))
            settings = ProjectSettings.parse(merged)
            before = [lab.value for lab in current.settings.labels]
            after = [lab.value for lab in settings.labels]
            if before != after and repo.project_has_data(s, project.id):
                raise ConflictError(
                    f"label values are fixed once the project holds label maps: keep values "
                    f"{before} (names and colours may change)"
                )
            changes = settings_diff(current.settings, settings)
            updated = repo.update_project(s, project.id, settings) if changes else current
            production = repo_versions.production_version(s, project.id)
        return Change(ProjectView(updated, production), changes)

    def archive(self, project: ProjectRecord, archived: bool) -> ProjectView:
        """Archive the project (read-only, left out of lists, not polled) or restore it."""
        with self.db.write() as s:
            current = repo.get_project(s, project.id)
            when = (current.archived_at or utcnow()) if archived else None
            record = repo.set_archived(s, project.id, when)
            return ProjectView(record, repo_versions.production_version(s, project.id))
