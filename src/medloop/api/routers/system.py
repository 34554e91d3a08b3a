"""``/healthz`` (no auth), ``/metrics`` (admins), ``/api/v1/me``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import text

from medloop import __version__
from medloop.api.security import CallerDep, RuntimeDep, require
from medloop.storage import repositories as repo

router = APIRouter()


@router.get("/healthz", tags=["system"])
def healthz(rt: RuntimeDep) -> dict[str, Any]:
    with rt.session() as s:
        s.execute(text("SELECT 1"))
    worker = rt.worker is not None and rt.worker.running
    return {"status": "ok", "version": __version__, "worker": worker}


@router.get("/metrics", response_class=PlainTextResponse, tags=["system"])
def metrics(request: Request, rt: RuntimeDep, who: CallerDep) -> PlainTextResponse:
    require(who, "admin", rt, "metrics.read")
    gauges: dict[str, list[tuple[dict[str, str], float]]] = {
        "medloop_job_queue_depth": [({}, float(rt.queue.depth()))],
        "medloop_model_production_version": [],
        "medloop_corrections_total": [],
    }
    with rt.session() as s:
        for p in repo.list_projects(s):
            prod = rt.production_version(p.id)
            if prod is not None:
                gauges["medloop_model_production_version"].append(
                    ({"project": p.name, "version": prod}, float(int(prod[1:])))
                )
            gauges["medloop_corrections_total"].append(
                ({"project": p.name}, float(repo.count_corrections(s, p.id)))
            )
    return PlainTextResponse(
        request.app.state.metrics.render(gauges), media_type="text/plain; version=0.0.4"
    )


@router.get("/api/v1/me", tags=["system"])
def me(who: CallerDep) -> dict[str, Any]:
    return {"id": who.user_id, "name": who.name, "role": who.role, "project_id": who.project_id}
