"""The audit trail as the interfaces use it: who did what to which resource, with what outcome.

Each event is written apart from the work it describes, so it is kept even when that
work fails and is rolled back; concurrent requests' events share one commit
(:meth:`~medloop.storage.database.Database.grouped`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medloop.domain.records import AuditRecord
from medloop.storage import repositories as repo
from medloop.storage.database import Database

__all__ = ["Actor", "AuditLog"]


@dataclass(frozen=True)
class Actor:
    """Who acts: a user (``user_id``, ``name``) from an address, or ``anonymous``."""

    name: str = "anonymous"
    user_id: str | None = None
    client_ip: str | None = None


class AuditLog:
    """Append and read audit events.

    Args:
        db: the database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self,
        actor: Actor,
        action: str,
        resource_type: str,
        resource_id: str | None = None,
        project_id: str | None = None,
        outcome: str = "ok",
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append an event (``outcome``: ``ok``, ``denied`` or ``error``)."""
        self.db.grouped(
            lambda s: repo.record_event(
                s,
                action=action,
                resource_type=resource_type,
                actor_name=actor.name,
                actor_id=actor.user_id,
                resource_id=resource_id,
                project_id=project_id,
                client_ip=actor.client_ip,
                outcome=outcome,
                detail=dict(detail) if detail else None,
            )
        )

    def recent(
        self, limit: int = 100, offset: int = 0, project_id: str | None = None
    ) -> list[AuditRecord]:
        """Events, newest first (``limit`` 1..1000), optionally of one project."""
        with self.db.read() as s:
            return repo.list_events(
                s, limit=min(max(limit, 1), 1000), offset=max(offset, 0), project_id=project_id
            )
