"""``/api/v1/projects/{project}/models``: versions, promote, roll back, download."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from medloop.api.convert import version_out
from medloop.api.deps import ServicesDep
from medloop.api.schemas import ModelVersionOut, Page, PromoteIn
from medloop.api.security import ProjectAccess, allow

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/projects/{project}/models", tags=["models"])


@router.get("")
def list_models(
    svc: ServicesDep, acc: Annotated[ProjectAccess, allow("viewer", "model.list", "model")]
) -> Page:
    history = svc.models.history(acc.project.id)
    items = [version_out(v, history.get(v.record.name)) for v in svc.models.listing(acc.project.id)]
    return Page(items=items, total=len(items))


@router.get("/{version}")
def get_model(
    version: str,
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("viewer", "model.read", "model", resource="version")],
) -> ModelVersionOut:
    history = svc.models.history(acc.project.id)
    return version_out(svc.models.view(acc.project.id, version), history.get(version))


@router.post("/rollback")
def rollback(
    svc: ServicesDep, acc: Annotated[ProjectAccess, allow("admin", "model.rollback", "model")]
) -> ModelVersionOut:
    view = svc.models.rollback(acc.project.id, acc.who.name)
    acc.note(view.record.name)
    return version_out(view)


@router.post("/{version}/promote")
def promote(
    version: str,
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("admin", "model.promote", "model", resource="version")],
    body: PromoteIn | None = None,
) -> ModelVersionOut:
    """Put a version in production; one the gate rejected needs ``{"reason": ...}``."""
    reason = body.reason if body else None
    if reason:
        acc.note(reason=reason)
    return version_out(svc.models.promote(acc.project.id, version, acc.who.name, reason))


@router.get("/{version}/download", response_class=Response)
def download(
    version: str,
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("viewer", "model.download", "model", resource="version")],
) -> Response:
    return Response(
        svc.models.download(acc.project.id, version),
        media_type="application/zip",
        headers={"content-disposition": f'attachment; filename="{version}.zip"'},
    )
