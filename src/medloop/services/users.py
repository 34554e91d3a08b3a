"""Users and device identities: bearer tokens (stored only as sha256) and roles."""

from __future__ import annotations

from medloop.domain.records import UserRecord
from medloop.storage import repositories as repo
from medloop.storage.database import Database

__all__ = ["ROLE_RANK", "Users"]

ROLE_RANK = {"viewer": 0, "annotator": 1, "admin": 2}
"""Roles, weakest first: each may do what the ones below it may."""


class Users:
    """Authenticate tokens, add users, rotate tokens.

    Args:
        db: the database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def authenticate(self, token: str) -> UserRecord | None:
        """The enabled user holding ``token``, or ``None`` (a read: never waits on writers)."""
        with self.db.read() as s:
            return repo.user_by_token(s, token)

    def add(self, name: str, role: str, project: str | None = None) -> tuple[UserRecord, str]:
        """A new user (bound to ``project``, an id or name, when given) and its token.

        Raises:
            InputError: unknown role. NotFoundError: unknown project.
            ConflictError: the name is taken.
        """
        with self.db.write() as s:
            project_id = repo.find_project(s, project).id if project else None
            return repo.create_user(s, name, role, project_id)

    def new_token(self, name: str, role: str) -> str:
        """A fresh token for user ``name``, created (unbound, with ``role``) if missing."""
        with self.db.write() as s:
            user = repo.get_user_by_name(s, name)
            if user is None:
                return repo.create_user(s, name, role, None)[1]
            return repo.rotate_token(s, user.id)
