"""``/api/v1/projects/{p}/models``: versions, promote, roll back, download."""

from __future__ import annotations

import io
import zipfile

from fastapi import APIRouter, Response

from medloop.api.schemas import ModelVersionOut, Page
from medloop.api.security import CallerDep, RuntimeDep, audit, project_for
from medloop.registry import ModelRegistry

router = APIRouter(prefix="/api/v1/projects/{p}/models", tags=["models"])


def _out(reg: ModelRegistry, name: str) -> ModelVersionOut:
    rec = reg.get(name)
    return ModelVersionOut(
        version=rec.name,
        status=rec.status.value,
        parent=rec.parent,
        kind=rec.kind,
        created_at=rec.created_at,
        metrics=rec.metrics,
        lineage=reg.lineage(name).to_dict(),
        report=reg.report(name),
    )


@router.get("")
def list_models(p: str, rt: RuntimeDep, who: CallerDep) -> Page:
    project = project_for(rt, who, p, "viewer", "model.list")
    reg = rt.registry(project.id)
    items = [_out(reg, r.name) for r in reg.versions()]
    audit(rt, who, "model.list", "model", None, project.id)
    return Page(items=items, total=len(items))


@router.get("/{v}")
def get_model(p: str, v: str, rt: RuntimeDep, who: CallerDep) -> ModelVersionOut:
    project = project_for(rt, who, p, "viewer", "model.read")
    out = _out(rt.registry(project.id), v)
    audit(rt, who, "model.read", "model", v, project.id)
    return out


@router.post("/rollback")
def rollback(p: str, rt: RuntimeDep, who: CallerDep) -> ModelVersionOut:
    project = project_for(rt, who, p, "admin", "model.rollback")
    reg = rt.registry(project.id)
    name = reg.rollback(reason=f"by {who.name}")
    audit(rt, who, "model.rollback", "model", name, project.id)
    return _out(reg, name)


@router.post("/{v}/promote")
def promote(p: str, v: str, rt: RuntimeDep, who: CallerDep) -> ModelVersionOut:
    project = project_for(rt, who, p, "admin", "model.promote")
    reg = rt.registry(project.id)
    reg.promote(v, reason=f"by {who.name}")
    audit(rt, who, "model.promote", "model", v, project.id)
    return _out(reg, v)


@router.get("/{v}/download", response_class=Response)
def download(p: str, v: str, rt: RuntimeDep, who: CallerDep) -> Response:
    project = project_for(rt, who, p, "viewer", "model.download")
    rec = rt.registry(project.id).get(v)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(rec.path.iterdir()):
            zf.write(f, f"{v}/{f.name}")
    audit(rt, who, "model.download", "model", v, project.id)
    return Response(
        buf.getvalue(),
        media_type="application/zip",
        headers={"content-disposition": f'attachment; filename="{v}.zip"'},
    )
