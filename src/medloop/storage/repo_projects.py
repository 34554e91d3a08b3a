"""Projects and users (people and devices, each with a hashed API token).

Every function works inside the caller's session and transaction: it flushes, never
commits. ``get_*`` raise :class:`~medloop.errors.NotFoundError` naming the id.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from medloop.domain.records import ProjectRecord, UserRecord
from medloop.domain.settings import ProjectSettings
from medloop.errors import NotFoundError
from medloop.storage._repo_base import check_choice, get_or_raise, insert
from medloop.storage.mapping import project_record, user_record
from medloop.storage.models import ROLES, Project, User

__all__ = [
    "TOKEN_PREFIX",
    "create_project",
    "create_user",
    "find_project",
    "get_project",
    "get_project_by_name",
    "get_user",
    "get_user_by_name",
    "hash_token",
    "list_projects",
    "list_users",
    "rotate_token",
    "set_user_disabled",
    "update_project",
    "user_by_token",
]

TOKEN_PREFIX = "mlp_"


# -- projects ------------------------------------------------------------------------------


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


def list_projects(session: Session, ids: Collection[str] | None = None) -> list[ProjectRecord]:
    """Projects by name; with ``ids``, only those (e.g. the ones a user may see)."""
    query = select(Project).order_by(Project.name)
    if ids is not None:
        query = query.where(Project.id.in_(list(ids)))
    return [project_record(row) for row in session.scalars(query)]


def update_project(session: Session, project_id: str, settings: ProjectSettings) -> ProjectRecord:
    """Replace a project's settings (the caller audits it)."""
    row = get_or_raise(session, Project, "project", project_id)
    row.settings = settings.to_json()
    session.flush()
    return project_record(row)


# -- users ---------------------------------------------------------------------------------


def hash_token(token: str) -> str:
    """The sha256 hex digest stored for an API token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def create_user(
    session: Session, name: str, role: str, project_id: str | None = None
) -> tuple[UserRecord, str]:
    """Create a user or device identity with a new API token.

    Args:
        name: unique name.
        role: ``viewer``, ``annotator`` or ``admin``.
        project_id: the one project the user may access; ``None`` for all.

    Returns:
        The user and its token. The token is shown once: only its sha256 is stored.

    Raises:
        InputError: unknown role.
        NotFoundError: no such project.
        ConflictError: a user with this name exists.
    """
    check_choice("role", role, ROLES)
    if project_id is not None:
        get_project(session, project_id)
    token = _new_token()
    row = User(name=name, role=role, project_id=project_id, token_hash=hash_token(token))
    insert(session, row, f"a user named {name!r} already exists")
    return user_record(row), token


def rotate_token(session: Session, user_id: str) -> str:
    """Give a user a new token (the old one stops working) and return it."""
    row = get_or_raise(session, User, "user", user_id)
    token = _new_token()
    row.token_hash = hash_token(token)
    session.flush()
    return token


def user_by_token(session: Session, token: str) -> UserRecord | None:
    """The enabled user holding ``token``, or ``None``.

    The token is hashed first and looked up by its hash (a unique index), so no
    comparison ever runs on the secret itself.
    """
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = session.scalars(select(User).where(User.token_hash == hash_token(token))).one_or_none()
    if row is None or row.disabled:
        return None
    return user_record(row)


def get_user(session: Session, user_id: str) -> UserRecord:
    """The user ``user_id``."""
    return user_record(get_or_raise(session, User, "user", user_id))


def get_user_by_name(session: Session, name: str) -> UserRecord | None:
    """The user called ``name``, or ``None``."""
    row = session.scalars(select(User).where(User.name == name)).one_or_none()
    return None if row is None else user_record(row)


def list_users(session: Session) -> list[UserRecord]:
    """All users by name."""
    return [user_record(row) for row in session.scalars(select(User).order_by(User.name))]


def set_user_disabled(session: Session, user_id: str, disabled: bool = True) -> UserRecord:
    """Disable (or re-enable) a user: a disabled user's token no longer authenticates."""
    row = get_or_raise(session, User, "user", user_id)
    row.disabled = disabled
    session.flush()
    return user_record(row)
