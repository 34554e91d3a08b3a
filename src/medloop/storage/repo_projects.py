"""Projects and users (people and devices, each with a hashed API token).

Every function works inside the caller's session and transaction: it flushes, never
commits. ``get_*`` raise :class:`~medloop.errors.NotFoundError` naming the id.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from medloop.errors import NotFoundError
from medloop.storage._repo_base import check_choice, get_or_raise, insert
from medloop.storage.models import ROLES, Project, User

__all__ = [
    "TOKEN_PREFIX",
    "create_project",
    "create_user",
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


def create_project(
    session: Session,
    name: str,
    labels: list[dict[str, Any]],
    image_kind: str,
    learning: dict[str, Any] | None = None,
) -> Project:
    """Create a project.

    Args:
        name: unique project name.
        labels: ``[{"value": int, "name": str, "color": str}, ...]`` (validated by the caller).
        image_kind: e.g. ``"fluorescence"``, ``"ultrasound"``.
        learning: learning settings (``correction_weight``, ``finetune_every``, ...).

    Raises:
        ConflictError: a project with this name exists.
    """
    row = Project(name=name, labels=labels, image_kind=image_kind, learning=dict(learning or {}))
    return insert(session, row, f"a project named {name!r} already exists")


def get_project(session: Session, project_id: str) -> Project:
    """The project ``project_id``."""
    return get_or_raise(session, Project, "project", project_id)


def get_project_by_name(session: Session, name: str) -> Project:
    """The project called ``name``.

    Raises:
        NotFoundError: no project has this name.
    """
    row = session.scalars(select(Project).where(Project.name == name)).one_or_none()
    if row is None:
        raise NotFoundError(f"project named {name!r} not found")
    return row


def list_projects(session: Session, ids: Collection[str] | None = None) -> list[Project]:
    """Projects by name; with ``ids``, only those (e.g. the ones a user may see)."""
    query = select(Project).order_by(Project.name)
    if ids is not None:
        query = query.where(Project.id.in_(list(ids)))
    return list(session.scalars(query))


def update_project(
    session: Session,
    project_id: str,
    *,
    labels: list[dict[str, Any]] | None = None,
    learning: dict[str, Any] | None = None,
) -> Project:
    """Replace a project's labels and/or learning settings (the caller audits it)."""
    row = get_project(session, project_id)
    if labels is not None:
        row.labels = list(labels)
    if learning is not None:
        row.learning = dict(learning)
    session.flush()
    return row


# -- users ---------------------------------------------------------------------------------


def hash_token(token: str) -> str:
    """The sha256 hex digest stored for an API token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def create_user(
    session: Session, name: str, role: str, project_id: str | None = None
) -> tuple[User, str]:
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
    return row, token


def rotate_token(session: Session, user_id: str) -> str:
    """Give a user a new token (the old one stops working) and return it."""
    row = get_user(session, user_id)
    token = _new_token()
    row.token_hash = hash_token(token)
    session.flush()
    return token


def user_by_token(session: Session, token: str) -> User | None:
    """The enabled user holding ``token``, or ``None``.

    The token is hashed first and looked up by its hash (a unique index), so no
    comparison ever runs on the secret itself.
    """
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = session.scalars(select(User).where(User.token_hash == hash_token(token))).one_or_none()
    if row is None or row.disabled:
        return None
    return row


def get_user(session: Session, user_id: str) -> User:
    """The user ``user_id``."""
    return get_or_raise(session, User, "user", user_id)


def get_user_by_name(session: Session, name: str) -> User | None:
    """The user called ``name``, or ``None``."""
    return session.scalars(select(User).where(User.name == name)).one_or_none()


def list_users(session: Session) -> list[User]:
    """All users by name."""
    return list(session.scalars(select(User).order_by(User.name)))


def set_user_disabled(session: Session, user_id: str, disabled: bool = True) -> User:
    """Disable (or re-enable) a user: a disabled user's token no longer authenticates."""
    row = get_user(session, user_id)
    row.disabled = disabled
    session.flush()
    return row
