"""Helpers the repository modules share: lookups that raise, inserts that map conflicts."""

from __future__ import annotations

from collections.abc import Collection
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from medloop.errors import ConflictError, InputError, NotFoundError
from medloop.storage.models import Base, Project

__all__ = ["check_choice", "get_or_raise", "insert", "lock_project", "page"]

T = TypeVar("T", bound=Base)


def get_or_raise(
    session: Session, model: type[T], noun: str, row_id: str, project_id: str | None = None
) -> T:
    """The row ``row_id`` of ``model``; with ``project_id``, only if it belongs to that project.

    Raises:
        NotFoundError: no such row, or it belongs to another project (indistinguishable,
            so another project's ids leak nothing).
    """
    row = session.get(model, row_id)
    if row is None or (project_id is not None and getattr(row, "project_id", None) != project_id):
        where = f" in project {project_id!r}" if project_id is not None else ""
        raise NotFoundError(f"{noun} {row_id!r} not found{where}")
    return row


def insert(session: Session, row: T, conflict: str) -> T:
    """Add and flush ``row`` inside a savepoint.

    Raises:
        ConflictError: a unique constraint refused it (message ``conflict``); the session
            stays usable.
    """
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as err:
        raise ConflictError(conflict) from err
    return row


def lock_project(session: Session, project_id: str) -> Project:
    """Load a project, locking its row until commit on PostgreSQL (SQLite locks the file).

    Serialises per-project counters (correction ``seq``) and job decisions.

    Raises:
        NotFoundError: no such project.
    """
    project = session.scalars(
        select(Project).where(Project.id == project_id).with_for_update()
    ).one_or_none()
    if project is None:
        raise NotFoundError(f"project {project_id!r} not found")
    return project


def check_choice(name: str, value: str, choices: Collection[str]) -> str:
    """``value`` if it is one of ``choices``.

    Raises:
        InputError: naming the field, the bad value and the choices.
    """
    if value not in choices:
        raise InputError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


MAX_OFFSET = 10**12
"""Larger offsets are refused: the databases' 64-bit integers would overflow (a 500)."""


def page(limit: int, offset: int) -> tuple[int, int]:
    """Validated ``(limit, offset)`` for a list query.

    Raises:
        InputError: negative values, a limit over 1000 or an offset over :data:`MAX_OFFSET`.
    """
    if not 0 <= limit <= 1000:
        raise InputError(f"limit must be between 0 and 1000, got {limit}")
    if not 0 <= offset <= MAX_OFFSET:
        raise InputError(f"offset must be between 0 and {MAX_OFFSET}, got {offset}")
    return limit, offset
