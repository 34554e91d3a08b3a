"""Projects: their typed settings, their archive date.

Every function works inside the caller's session and transaction: it flushes, never
commits. ``get_*`` raise :class:`~medloop.errors.NotFoundError` naming the id.
Users and tokens are in :mod:`medloop.storage.repo_users`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from medloop.domain.records import ProjectRecord
from medloop.domain.settings import ProjectSettings
from medloop.errors import NotFoundError
from medloop.storage._repo_base import get_or_raise, insert
from medloop.storage.mapping import project_record
from medloop.storage.models import Analysis, ModelVersion, Project, ReferencePair

__all__ = [
    "create_project",
    "find_project",
    "get_project",
    "get_project_by_name",
    "list_projects",
    "project_has_data",
    "set_archived",
    "update_project",
]


def create_project(session: Session, name: str, settings: ProjectSettings) -> ProjectRecord:
    """Create a project with its settings (stored as ``settings.to_json()``).

    Raises:
        ConflictError: a project with this name exists.
    """
    row = Project(name=name, settings=settings.to_json())
    return project_record(insert(session, row, f"a project named {name!r} already exists"))


def get_project(session: Session, project_id: str) -> ProjectRecord:
    """The project ``project_id``."""
    return project_record(get_or_raise(session, Project, "project", project_id))


def get_project_by_name(session: Session, name: str) -> ProjectRecord:
    """The project called ``name``.

    Raises:
        NotFoundError: no project has this name.
    """
    row = session.scalars(select(Project).where(Project.name == name)).one_or_none()
    if row is None:
        raise NotFoundError(f"project named {name!r} not found")
    return project_record(row)


def find_project(session: Session, ref: str) -> ProjectRecord:
    """A project by id or by name.

    Raises:
        NotFoundError: neither an id nor a name of a project.
    """
    row = session.get(Project, ref)
    if row is None:
        row = session.scalars(select(Project).where(Project.name == ref)).one_or_none()
    if row is None:
        raise NotFoundError(f"no project {ref!r}")
    return project_record(row)


def list_projects(
    session: Session, ids: Collection[str] | None = None, archived: bool | None = False
) -> list[ProjectRecord]:
    """Projects by name; with ``ids``, only those (e.g. the ones a user may see).

    ``archived``: ``False`` (default) the active ones, ``True`` the archived ones,
    ``None`` both.
    """
    query = select(Project).order_by(Project.name)
    if ids is not None:
        query = query.where(Project.id.in_(list(ids)))
    if archived is not None:
        column = Project.archived_at
        query = query.where(column.is_not(None) if archived else column.is_(None))
    return [project_record(row) for row in session.scalars(query)]


def update_project(session: Session, project_id: str, settings: ProjectSettings) -> ProjectRecord:
    """Replace a project's settings (the caller audits it)."""
    row = get_or_raise(session, Project, "project", project_id)
    row.settings = settings.to_json()
    session.flush()
    return project_record(row)


def set_archived(session: Session, project_id: str, at: datetime | None) -> ProjectRecord:
    """Archive the project (``at``: when) or, with ``None``, restore it."""
    row = get_or_raise(session, Project, "project", project_id)
    row.archived_at = at
    session.flush()
    return project_record(row)


def project_has_data(session: Session, project_id: str) -> bool:
    """Whether the project holds label maps: reference pairs, analyses or model versions."""
    return any(
        session.scalar(select(exists().where(model.project_id == project_id)))
        for model in (ReferencePair, Analysis, ModelVersion)
    )
