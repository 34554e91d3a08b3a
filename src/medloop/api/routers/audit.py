"""``/api/v1/audit``: the append-only audit trail (admins; a project's admin sees its own)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from medloop.api.convert import audit_out
from medloop.api.deps import ServicesDep
from medloop.api.schemas import Page
from medloop.api.security import Access, allow_any

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("")
def list_audit(
    svc: ServicesDep,
    acc: Annotated[Access, allow_any("admin", "audit.read", "audit")],
    limit: int = 100,
    offset: int = 0,
    project_id: str | None = None,
) -> Page:
    project = acc.who.project_id or project_id
    acc.project_id = project
    return Page(items=[audit_out(e) for e in svc.audit.recent(limit, offset, project)])
