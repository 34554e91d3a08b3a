"""``/api/v1/audit``: the append-only audit trail (admins)."""

from __future__ import annotations

from fastapi import APIRouter

from medloop.api.convert import audit_out
from medloop.api.schemas import Page
from medloop.api.security import CallerDep, RuntimeDep, audit, require
from medloop.storage import repositories as repo

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("")
def list_audit(
    rt: RuntimeDep, who: CallerDep, limit: int = 100, offset: int = 0, project_id: str | None = None
) -> Page:
    require(who, "admin", rt, "audit.read")
    if who.project_id is not None:
        project_id = who.project_id
    with rt.session() as s:
        rows = repo.list_events(
            s, limit=min(max(limit, 1), 1000), offset=max(offset, 0), project_id=project_id
        )
        items = [audit_out(e) for e in rows]
    audit(rt, who, "audit.read", "audit", None, project_id)
    return Page(items=items)
