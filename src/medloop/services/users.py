"""Users and device identities, their roles and their bearer tokens (stored only as sha256).

A user holds any number of tokens. Each token may expire: a person's tokens by
default after ``person_token_days`` (the server's setting), a device's never; an
admin may choose another expiry, or none, for each token. A revoked or expired token,
or any token of a disabled user, answers 401 from the next request on: every request
reads the token's row. Its last use is written at most once a minute.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.orm import Session

from medloop.domain.records import TokenRecord, UserRecord
from medloop.errors import ConflictError, InputError, NotFoundError
from medloop.storage import repositories as repo
from medloop.storage.database import Database
from medloop.storage.models import utcnow

__all__ = ["DEFAULT", "ROLE_RANK", "Expiry", "Users"]

ROLE_RANK = {"viewer": 0, "annotator": 1, "admin": 2}
"""Roles, weakest first: each may do what the ones below it may."""

DEFAULT: Literal["default"] = "default"
Expiry = float | None | Literal["default"]
"""Days until a new token expires; ``None``: never; ``"default"``: the user kind's default."""

TOUCH_EVERY = timedelta(seconds=60)
MAX_DAYS = 3650


class Users:
    """Authenticate tokens; add, list, change and disable users; issue and revoke tokens.

    Args:
        db: the database.
        person_token_days: default lifetime of a person's tokens (0: no expiry).
        clock: the current time (tests move it).
    """

    def __init__(
        self,
        db: Database,
        person_token_days: float = 90.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db, self.person_token_days, self.clock = db, person_token_days, clock

    # -- authentication -------------------------------------------------------------------

    def authenticate(self, token: str) -> UserRecord | None:
        """The enabled user holding the active ``token``, or ``None``."""
        now = self.clock()
        with self.db.read() as s:
            found = repo.token_of(s, token, now)
        if found is None:
            return None
        user, tok = found
        if tok.last_used_at is None or now - tok.last_used_at >= TOUCH_EVERY:
            with self.db.write() as s:
                repo.touch_token(s, tok.id, now)
        return user

    # -- users ----------------------------------------------------------------------------

    def add(
        self,
        name: str,
        role: str,
        project: str | None = None,
        *,
        kind: str = "person",
        expires_days: Expiry = DEFAULT,
        created_by: str | None = None,
    ) -> tuple[UserRecord, str]:
        """A new user (bound to ``project``, an id or name, when given) and its first token.

        Raises:
            InputError: unknown role or kind, a bad expiry. NotFoundError: unknown project.
            ConflictError: the name is taken.
        """
        expires_at = self._expiry(kind, expires_days)
        with self.db.write() as s:
            project_id = repo.find_project(s, project).id if project else None
            user = repo.create_user(s, name, role, project_id, kind)
            _, secret = repo.issue_token(s, user.id, "initial", expires_at, created_by)
            return user, secret

    def all(self) -> list[UserRecord]:
        """Every user by name, with its last use."""
        with self.db.read() as s:
            return repo.list_users(s)

    def get(self, ref: str) -> UserRecord:
        """A user by id or name (``NotFoundError`` otherwise)."""
        with self.db.read() as s:
            return self._find(s, ref)

    @staticmethod
    def _find(s: Session, ref: str) -> UserRecord:
        try:
            return repo.get_user(s, ref)
        except NotFoundError:
            user = repo.get_user_by_name(s, ref)
            if user is None:
                raise NotFoundError(f"no user {ref!r}") from None
            return user

    def update(
        self,
        ref: str,
        *,
        role: str | None = None,
        project: str | None = None,
        unbind: bool = False,
        disabled: bool | None = None,
    ) -> tuple[UserRecord, UserRecord]:
        """Change a user's role, project scope (``unbind``: every project) or ``disabled``.

        Returns:
            The user before and after.

        Raises:
            ConflictError: the change would leave the server without an enabled admin of
                every project (disabling, demoting or binding the last one).
        """
        with self.db.write() as s:
            before = self._find(s, ref)
            project_id = repo.find_project(s, project).id if project else None
            after = repo.update_user(
                s, before.id, role=role, project_id=project_id, unbind=unbind, disabled=disabled
            )
            if _full_admin(before) and not _full_admin(after) and repo.count_admins(s) == 0:
                raise ConflictError(
                    f"{before.name!r} is the last enabled admin of every project; "
                    "make another one first"
                )
            return before, after

    # -- tokens ---------------------------------------------------------------------------

    def tokens(self, ref: str) -> list[TokenRecord]:
        """A user's tokens, newest first (no secrets: only their sha256 is kept)."""
        with self.db.read() as s:
            return repo.list_tokens(s, self._find(s, ref).id)

    def issue(
        self,
        ref: str,
        name: str = "",
        expires_days: Expiry = DEFAULT,
        created_by: str | None = None,
    ) -> tuple[TokenRecord, str]:
        """Another token for the user: its record and its secret (shown once)."""
        with self.db.write() as s:
            user = self._find(s, ref)
            expires_at = self._expiry(user.kind, expires_days)
            return repo.issue_token(s, user.id, name, expires_at, created_by)

    def revoke(self, ref: str, token_id: str) -> TokenRecord:
        """Revoke one of the user's tokens; it answers 401 from the next request on."""
        with self.db.write() as s:
            return repo.revoke_token(s, token_id, self._find(s, ref).id)

    def new_token(self, name: str, role: str) -> str:
        """A fresh token for user ``name`` (its other tokens revoked), created unbound with
        ``role`` if missing: the demo server's admin at each start."""
        with self.db.write() as s:
            user = repo.get_user_by_name(s, name)
            if user is None:
                user = repo.create_user(s, name, role, None)
            repo.revoke_tokens(s, user.id)
            return repo.issue_token(s, user.id, "demo", self._expiry(user.kind, DEFAULT))[1]

    def _expiry(self, kind: str, days: Expiry) -> datetime | None:
        if days == DEFAULT:
            default = self.person_token_days if kind == "person" else 0.0
            return None if default <= 0 else self.clock() + timedelta(days=default)
        if days is None:
            return None
        if not 0 < days <= MAX_DAYS:
            raise InputError(f"a token expires after 1 to {MAX_DAYS} days, got {days}")
        return self.clock() + timedelta(days=days)


def _full_admin(user: UserRecord) -> bool:
    return user.role == "admin" and user.project_id is None and not user.disabled
