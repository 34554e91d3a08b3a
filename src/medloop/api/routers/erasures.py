"""``/api/v1/projects/{project}/erasures``: erase a patient's, a study's or an image's data.

Admins only, archived projects included. The request is audited with who and why, never
with the identifier itself (its sha256 only); the erasure runs as a job that cannot be
cancelled.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from medloop.api.convert import erasure_out, job_out, preview_out
from medloop.api.deps import ServicesDep
from medloop.api.schemas import (
    Page,
)
from medloop.api.schemas_admin import (
    ErasureIn,
    ErasureOut,
    ErasurePreviewIn,
    ErasurePreviewOut,
    ErasureRequestOut,
)
from medloop.api.security import ProjectAccess, allow
from medloop.services.erasure import value_digest

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/projects/{project}/erasures", tags=["erasure"])


@router.post("/preview")
def preview_erasure(
    body: ErasurePreviewIn,
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("admin", "erasure.preview", "erasure", archived=True)],
) -> ErasurePreviewOut:
    """What an erasure would remove (nothing is removed): 404 when nothing matches."""
    acc.note(scope=body.scope, value_sha256=value_digest(body.value))
    return preview_out(svc.erasures.preview(acc.project, body.scope, body.value))


@router.post("", status_code=status.HTTP_202_ACCEPTED)
def request_erasure(
    body: ErasureIn,
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("admin", "erasure.create", "erasure", archived=True)],
) -> ErasureRequestOut:
    acc.note(scope=body.scope, value_sha256=value_digest(body.value), reason=body.reason)
    record, job = svc.erasures.request(
        acc.project, body.scope, body.value, body.reason, acc.who.actor
    )
    acc.note(record.id, job=job.id)
    return ErasureRequestOut(erasure=erasure_out(record), job=job_out(job))


@router.get("")
def list_erasures(
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("admin", "erasure.list", "erasure", polled=True)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Page:
    items = [erasure_out(e) for e in svc.erasures.recent(acc.project.id, limit)]
    return Page(items=items, total=len(items))


@router.get("/{erasure}")
def get_erasure(
    erasure: str,
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("admin", "erasure.read", "erasure", polled=True)],
) -> ErasureOut:
    return erasure_out(svc.erasures.get(acc.project.id, erasure))
