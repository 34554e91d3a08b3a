"""Users (people and devices) and their API tokens, each stored only as a sha256.

A user may hold several tokens: each has a name, an optional expiry, its last use and
its revocation. A token authenticates while it is neither revoked nor expired and its
user is enabled. Every function works inside the caller's session and transaction:
it flushes, never commits.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from medloop.domain.records import TokenRecord, UserRecord
from medloop.errors import NotFoundError
from medloop.storage._repo_base import check_choice, get_or_raise, insert
from medloop.storage.mapping import token_record, user_record
from medloop.storage.models import ROLES, USER_KINDS, ApiToken, Project, User, utcnow

__all__ = [
    "TOKEN_PREFIX",
    "count_admins",
    "create_user",
    "get_token",
    "get_user",
    "get_user_by_name",
    "hash_token",
    "issue_token",
    "list_tokens",
    "list_users",
    "revoke_token",
    "revoke_tokens",
    "set_user_disabled",
    "token_of",
    "touch_token",
    "update_user",
]

TOKEN_PREFIX = "mlp_"


def hash_token(token: str) -> str:
    """The sha256 hex digest stored for an API token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _last_used(session: Session, user_ids: Collection[str]) -> dict[str, datetime]:
    if not user_ids:
        return {}
    query = (
        select(ApiToken.user_id, func.max(ApiToken.last_used_at))
        .where(ApiToken.user_id.in_(list(user_ids)))
        .group_by(ApiToken.user_id)
    )
    return {uid: at for uid, at in session.execute(query) if at is not None}


def _user(session: Session, row: User) -> UserRecord:
    return user_record(row, _last_used(session, [row.id]).get(row.id))


def create_user(
    session: Session,
    name: str,
    role: str,
    project_id: str | None = None,
    kind: str = "person",
) -> UserRecord:
    """Create a person or device identity (without a token: see :func:`issue_token`).

    Raises:
        InputError: unknown role or kind.
        NotFoundError: no such project.
        ConflictError: a user with this name exists.
    """
    check_choice("role", role, ROLES)
    check_choice("kind", kind, USER_KINDS)
    if project_id is not None:
        get_or_raise(session, Project, "project", project_id)
    row = User(name=name, role=role, project_id=project_id, kind=kind)
    return user_record(insert(session, row, f"a user named {name!r} already exists"), None)


def issue_token(
    session: Session,
    user_id: str,
    name: str = "",
    expires_at: datetime | None = None,
    created_by: str | None = None,
) -> tuple[TokenRecord, str]:
    """A new token for ``user_id``: its record, and the secret (shown once, stored hashed)."""
    get_or_raise(session, User, "user", user_id)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user_id,
        name=name,
        token_hash=hash_token(secret),
        expires_at=expires_at,
        created_by=created_by,
    )
    session.add(row)
    session.flush()
    return token_record(row), secret


def token_of(session: Session, secret: str, now: datetime) -> tuple[UserRecord, TokenRecord] | None:
    """The enabled user and the active token ``secret`` is, or ``None``.

    The secret is hashed first and looked up by its hash (a unique index), so no
    comparison ever runs on the secret itself.
    """
    if not secret.startswith(TOKEN_PREFIX):
        return None
    query = (
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == hash_token(secret))
    )
    found = session.execute(query).one_or_none()
    if found is None:
        return None
    token_row, user_row = found
    token = token_record(token_row)
    if user_row.disabled or not token.active(now):
        return None
    return user_record(user_row, token.last_used_at), token


def touch_token(session: Session, token_id: str, at: datetime) -> None:
    """Record a use of the token (callers write this at most every minute or so)."""
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=at))


def get_user(session: Session, user_id: str) -> UserRecord:
    """The user ``user_id``."""
    return _user(session, get_or_raise(session, User, "user", user_id))


def get_user_by_name(session: Session, name: str) -> UserRecord | None:
    """The user called ``name``, or ``None``."""
    row = session.scalars(select(User).where(User.name == name)).one_or_none()
    return None if row is None else _user(session, row)


def list_users(session: Session) -> list[UserRecord]:
    """All users by name, each with its last use."""
    rows = list(session.scalars(select(User).order_by(User.name)))
    used = _last_used(session, [r.id for r in rows])
    return [user_record(row, used.get(row.id)) for row in rows]


def count_admins(session: Session, exclude: str | None = None) -> int:
    """Enabled admins bound to no project (``exclude``: leave this user out)."""
    query = select(func.count()).where(
        User.role == "admin", User.project_id.is_(None), User.disabled.is_(False)
    )
    if exclude is not None:
        query = query.where(User.id != exclude)
    return int(session.scalar(query) or 0)


def update_user(
    session: Session,
    user_id: str,
    *,
    role: str | None = None,
    project_id: str | None = None,
    unbind: bool = False,
    disabled: bool | None = None,
) -> UserRecord:
    """Change a user's role, project (``unbind``: every project) or ``disabled`` flag.

    Raises:
        NotFoundError: no such user or project. InputError: unknown role.
    """
    row = get_or_raise(session, User, "user", user_id)
    if role is not None:
        row.role = check_choice("role", role, ROLES)
    if project_id is not None:
        row.project_id = get_or_raise(session, Project, "project", project_id).id
    elif unbind:
        row.project_id = None
    if disabled is not None:
        row.disabled = disabled
    session.flush()
    return _user(session, row)


def set_user_disabled(session: Session, user_id: str, disabled: bool = True) -> UserRecord:
    """Disable (or re-enable) a user: a disabled user's tokens no longer authenticate."""
    return update_user(session, user_id, disabled=disabled)


def list_tokens(session: Session, user_id: str) -> list[TokenRecord]:
    """A user's tokens, newest first (revoked and expired ones included)."""
    get_or_raise(session, User, "user", user_id)
    query = (
        select(ApiToken)
        .where(ApiToken.user_id == user_id)
        .order_by(ApiToken.created_at.desc(), ApiToken.id)
    )
    return [token_record(row) for row in session.scalars(query)]


def get_token(session: Session, token_id: str, user_id: str | None = None) -> TokenRecord:
    """The token ``token_id`` (of ``user_id``, when given)."""
    row = session.get(ApiToken, token_id)
    if row is None or (user_id is not None and row.user_id != user_id):
        raise NotFoundError(f"token {token_id!r} not found")
    return token_record(row)


def revoke_token(session: Session, token_id: str, user_id: str | None = None) -> TokenRecord:
    """Revoke a token now (it answers 401 from the next request on); revoking twice is a no-op."""
    row = session.get(ApiToken, token_id)
    if row is None or (user_id is not None and row.user_id != user_id):
        raise NotFoundError(f"token {token_id!r} not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return token_record(row)


def revoke_tokens(session: Session, user_id: str) -> int:
    """Revoke every active token of a user; returns how many."""
    now = utcnow()
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)
