"""The audit log: append-only events (who, what, which resource, when, from where, outcome).

There is deliberately no update or delete here. :func:`record_event` flushes in the
caller's transaction; to log a refused or failed request, record it in a session of
its own so that the failed work's rollback does not take the event with it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from medloop.domain.records import AuditRecord
from medloop.storage._repo_base import check_choice, page
from medloop.storage.mapping import audit_record
from medloop.storage.models import OUTCOMES, AuditEvent

__all__ = ["list_events", "record_event"]


def record_event(
    session: Session,
    *,
    action: str,
    resource_type: str,
    actor_name: str,
    actor_id: str | None = None,
    resource_id: str | None = None,
    project_id: str | None = None,
    client_ip: str | None = None,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append an event.

    Args:
        action: ``<resource>.<verb>``, e.g. ``image.create``, ``analysis.read``, ``model.promote``.
        resource_type: e.g. ``image``, ``analysis``, ``model``, ``job``.
        actor_name: the user's name (kept even if the user is later removed), or
            ``anonymous`` for unauthenticated requests.
        outcome: ``ok``, ``denied`` or ``error``.
        detail: small JSON-able context (never image data or tokens).

    Raises:
        InputError: unknown outcome.
    """
    check_choice("outcome", outcome, OUTCOMES)
    row = AuditEvent(
        action=action,
        resource_type=resource_type,
        actor_name=actor_name,
        actor_id=actor_id,
        resource_id=resource_id,
        project_id=project_id,
        client_ip=client_ip,
        outcome=outcome,
        detail=detail,
    )
    session.add(row)
    session.flush()
    return audit_record(row)


def list_events(
    session: Session,
    limit: int = 100,
    offset: int = 0,
    project_id: str | None = None,
    *,
    actor_id: str | None = None,
    action: str | None = None,
) -> list[AuditRecord]:
    """Events, newest first, optionally only one project's, actor's or action's."""
    limit, offset = page(limit, offset)
    query = select(AuditEvent)
    if project_id is not None:
        query = query.where(AuditEvent.project_id == project_id)
    if actor_id is not None:
        query = query.where(AuditEvent.actor_id == actor_id)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    query = query.order_by(AuditEvent.id.desc()).limit(limit).offset(offset)
    return [audit_record(row) for row in session.scalars(query)]
