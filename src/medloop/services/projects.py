"""Projects on the server: their typed settings in the database, their production version."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from medloop.domain.records import ProjectRecord
from medloop.domain.settings import ProjectSettings
from medloop.storage import repo_versions
from medloop.storage import repositories as repo
from medloop.storage.database import Database

__all__ = ["ProjectView", "Projects"]


@dataclass(frozen=True)
class ProjectView:
    """A project and the name of its production version (``None`` before the first)."""

    project: ProjectRecord
    production_version: str | None


class Projects:
    """Create, find and list projects.

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
        """A project by id or name (``NotFoundError`` otherwise)."""
        with self.db.read() as s:
            return repo.find_project(s, ref)

    def view(self, project: ProjectRecord) -> ProjectView:
        """``project`` with its production version."""
        with self.db.read() as s:
            return ProjectView(project, repo_versions.production_version(s, project.id))

    def visible(self, only: Collection[str] | None = None) -> list[ProjectView]:
        """Projects by name (with ``only``, those ids), each with its production version."""
        with self.db.read() as s:
            projects = repo.list_projects(s, only)
            production = repo_versions.production_versions(s)
        return [ProjectView(p, production.get(p.id)) for p in projects]
