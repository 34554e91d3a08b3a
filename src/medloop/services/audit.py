"""The audit trail as the interfaces use it: who did what to which resource, with what outcome.

Each event is written apart from the work it describes, so it is kept even when that
work fails and is rolled back; concurrent requests' events share one commit
(:meth:`~medloop.storage.database.Database.grouped`). An event's details are bounded
(:func:`bounded`): whatever a caller sends, one event stays small.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from medloop.domain.records import AuditRecord
from medloop.storage import repositories as repo
from medloop.storage.database import Database

__all__ = ["MAX_DETAIL_ITEMS", "MAX_DETAIL_TEXT", "Actor", "AuditLog", "bounded"]

MAX_DETAIL_TEXT = 500
"""Characters kept of any text in an event's details."""
MAX_DETAIL_ITEMS = 100
"""Items kept of any list or mapping in an event's details."""
MAX_DETAIL_DEPTH = 6
"""Levels of nesting kept (a settings change: changes -> field -> before/after -> labels)."""
MAX_DETAIL_BYTES = 16_384
"""Serialized size beyond which an event keeps only the start of its details."""


def bounded(value: Any) -> Any:
    """``value`` with long texts cut, long lists and mappings shortened, deep nesting
    replaced by a marker and, past :data:`MAX_DETAIL_BYTES` in all, only its start kept
    (as text): one audit event stays a few kilobytes whatever a caller sends."""
    out = _bounded(value, 0)
    text = json.dumps(out, default=str, ensure_ascii=False)
    if len(text.encode()) <= MAX_DETAIL_BYTES:
        return out
    return {"truncated": text[: MAX_DETAIL_BYTES // 8] + "…"}


def _bounded(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_DETAIL_TEXT else value[:MAX_DETAIL_TEXT] + "…"
    if depth >= MAX_DETAIL_DEPTH:
        return "…" if isinstance(value, dict | list | tuple) else value
    if isinstance(value, dict):
        items = list(value.items())
        out = {str(k)[:100]: _bounded(v, depth + 1) for k, v in items[:MAX_DETAIL_ITEMS]}
        if len(items) > MAX_DETAIL_ITEMS:
            out["…"] = f"{len(items) - MAX_DETAIL_ITEMS} more"
        return out
    if isinstance(value, list | tuple):
        out_list = [_bounded(v, depth + 1) for v in list(value)[:MAX_DETAIL_ITEMS]]
        if len(value) > MAX_DETAIL_ITEMS:
            out_list.append(f"… {len(value) - MAX_DETAIL_ITEMS} more")
        return out_list
    return value


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
        self._lock = threading.Lock()
        self._recent: dict[tuple[Any, ...], float] = {}

    def record(
        self,
        actor: Actor,
        action: str,
        resource_type: str,
        resource_id: str | None = None,
        project_id: str | None = None,
        outcome: str = "ok",
        detail: dict[str, Any] | None = None,
        *,
        coalesce_s: float | None = None,
    ) -> None:
        """Append an event (``outcome``: ``ok``, ``denied`` or ``error``).

        With ``coalesce_s``, an event like one recorded (by this process) less than that
        many seconds ago (same actor, action, resource, project and outcome) is not
        recorded again: for reads that clients poll.
        """
        if coalesce_s is not None and self._seen(
            (actor.user_id, actor.name, action, resource_type, resource_id, project_id, outcome),
            coalesce_s,
        ):
            return
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
                detail=bounded(dict(detail)) if detail else None,
            )
        )

    def _seen(self, key: tuple[Any, ...], window_s: float) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._recent.get(key)
            if last is not None and now - last < window_s:
                return True
            self._recent[key] = now
            if len(self._recent) > 10_000:
                self._recent = {k: t for k, t in self._recent.items() if now - t < window_s}
        return False

    def recent(
        self, limit: int = 100, offset: int = 0, project_id: str | None = None
    ) -> list[AuditRecord]:
        """Events, newest first (``limit`` 1..1000), optionally of one project."""
        with self.db.read() as s:
            return repo.list_events(
                s, limit=min(max(limit, 1), 1000), offset=max(offset, 0), project_id=project_id
            )
