"""``/healthz`` (no auth), ``/metrics`` (admins bound to no project: it covers every
project), ``/api/v1/me``, the project settings' schema."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from medloop import __version__
from medloop.api.deps import ServicesDep
from medloop.api.security import Access, CallerDep, allow_any
from medloop.domain.settings import ProjectSettings

__all__ = ["router"]

router = APIRouter()


@router.get("/healthz", tags=["system"])
def healthz(svc: ServicesDep) -> dict[str, Any]:
    return {"status": "ok", "version": __version__, "worker": svc.system.health()}


@router.get("/metrics", response_class=PlainTextResponse, tags=["system"])
def metrics(
    request: Request,
    svc: ServicesDep,
    _: Annotated[Access, allow_any("admin", "metrics.read", "metrics", server=True, polled=True)],
) -> PlainTextResponse:
    return PlainTextResponse(
        request.app.state.metrics.render(svc.system.gauges()),
        media_type="text/plain; version=0.0.4",
    )


@router.get("/api/v1/me", tags=["system"])
def me(who: CallerDep) -> dict[str, Any]:
    return {"id": who.user_id, "name": who.name, "role": who.role, "project_id": who.project_id}


@router.get("/api/v1/schemas/project-settings", tags=["projects"])
def project_settings_schema(_: CallerDep) -> dict[str, Any]:
    """The JSON schema of a project's settings: each field's type, bounds, default and one
    line of help (what the browser's Settings page shows)."""
    return ProjectSettings.model_json_schema()
