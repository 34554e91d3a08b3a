"""``/api/v1/projects/{p}/analyses``, their masks, overlays and corrections; the review queue.

Model work never runs on the event loop: uploads are stored in Starlette's thread
pool and inference runs in the runtime's analysis pool.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Request, Response, UploadFile, status
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload

from medloop.api.convert import analysis_out, correction_out, image_out
from medloop.api.routers._files import chunks, safe_name
from medloop.api.schemas import AnalysisOut, AnalyzeRequest, CorrectionOut, Page, ReviewItemOut
from medloop.api.security import CallerDep, RuntimeDep, audit, audit_failure, project_for
from medloop.errors import InputError
from medloop.io import decode_mask, encode_png, render_overlay
from medloop.services.server_data import analyze_image, correct_analysis, ingest_image, load_image
from medloop.services.server_projects import label_set
from medloop.storage import repositories as repo
from medloop.storage.models import Image as ImageRow

router = APIRouter(prefix="/api/v1/projects/{p}", tags=["analyses"])


def _corrected(rt: RuntimeDep, project_id: str, analysis_id: str) -> bool:
    with rt.session() as s:
        return bool(repo.list_corrections(s, project_id, analysis_id=analysis_id, limit=1))


@router.post(
    "/analyses",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": AnalyzeRequest.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                },
            },
            "required": True,
        }
    },
)
async def create_analysis(p: str, request: Request, rt: RuntimeDep, who: CallerDep) -> AnalysisOut:
    """Analyse a stored image (JSON ``{"image_id"}``) or upload and analyse (multipart ``file``)."""
    project = await run_in_threadpool(project_for, rt, who, p, "annotator", "analysis.create")
    ctype = request.headers.get("content-type", "")
    version: str | None = None
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, StarletteUpload):
            raise InputError("multipart analysis needs a 'file' field with the image")
        row, _ = await run_in_threadpool(
            ingest_image,
            rt,
            project.id,
            chunks(upload),
            safe_name(upload),
            upload.content_type or "",
            who.user_id,
        )
    elif ctype.startswith("application/json"):
        try:
            body = AnalyzeRequest.model_validate(json.loads(await request.body()))
        except (ValueError, TypeError) as err:
            raise HTTPException(
                422, f'invalid JSON body: expected {{"image_id": ...}} ({str(err)[:200]})'
            ) from err
        version = body.version

        def get_row() -> ImageRow:
            with rt.session() as s:
                return repo.get_image(s, body.image_id, project.id)

        row = await run_in_threadpool(get_row)
    else:
        raise InputError("send JSON {\"image_id\": ...} or multipart with a 'file' field")
    loop = asyncio.get_running_loop()
    analysis = await loop.run_in_executor(
        rt.analysis_pool, analyze_image, rt, project, row, version, who.user_id
    )
    await run_in_threadpool(
        audit,
        rt,
        who,
        "analysis.create",
        "analysis",
        analysis.id,
        project.id,
        "ok",
        {"version": analysis.model_version},
    )
    return analysis_out(analysis, False)


@router.get("/analyses")
def list_analyses(p: str, rt: RuntimeDep, who: CallerDep, limit: int = 50, offset: int = 0) -> Page:
    project = project_for(rt, who, p, "viewer", "analysis.list")
    with rt.session() as s:
        rows = repo.list_analyses(
            s, project.id, limit=min(max(limit, 1), 500), offset=max(offset, 0)
        )
    items = [analysis_out(a, _corrected(rt, project.id, a.id)) for a in rows]
    audit(rt, who, "analysis.list", "analysis", None, project.id, detail={"count": len(items)})
    return Page(items=items)


@router.get("/analyses/{a}")
def get_analysis(p: str, a: str, rt: RuntimeDep, who: CallerDep) -> AnalysisOut:
    project = project_for(rt, who, p, "viewer", "analysis.read")
    with rt.session() as s:
        row = repo.get_analysis(s, a, project.id)
    audit(rt, who, "analysis.read", "analysis", a, project.id)
    return analysis_out(row, _corrected(rt, project.id, a))


@router.get("/analyses/{a}/mask", response_class=Response)
def get_mask(p: str, a: str, rt: RuntimeDep, who: CallerDep) -> Response:
    project = project_for(rt, who, p, "viewer", "analysis.mask")
    with rt.session() as s:
        row = repo.get_analysis(s, a, project.id)
    data = rt.blobs.read_bytes(row.label_blob_key, row.label_sha256)
    audit(rt, who, "analysis.mask", "analysis", a, project.id)
    return Response(data, media_type="image/png")


@router.get("/analyses/{a}/overlay", response_class=Response)
def get_overlay(p: str, a: str, rt: RuntimeDep, who: CallerDep) -> Response:
    project = project_for(rt, who, p, "viewer", "analysis.overlay")
    with rt.session() as s:
        row = repo.get_analysis(s, a, project.id)
        img_row = repo.get_image(s, row.image_id, project.id)
    labels = label_set(project)
    lm = decode_mask(
        rt.blobs.read_bytes(row.label_blob_key, row.label_sha256),
        name="label map",
        num_foreground=labels.num_foreground,
    )
    png = encode_png(
        render_overlay(load_image(rt, img_row, row.frame), lm, [lab.color for lab in labels.labels])
    )
    audit(rt, who, "analysis.overlay", "analysis", a, project.id)
    return Response(png, media_type="image/png")


@router.post("/analyses/{a}/corrections", status_code=status.HTTP_201_CREATED)
def create_correction(
    p: str, a: str, rt: RuntimeDep, who: CallerDep, file: Annotated[UploadFile, File()]
) -> CorrectionOut:
    project = project_for(rt, who, p, "annotator", "correction.create")
    with rt.session() as s:
        analysis = repo.get_analysis(s, a, project.id)
    with audit_failure(rt, who, "correction.create", "correction", project.id, {"analysis": a}):
        res = correct_analysis(
            rt, project, analysis, chunks(file), safe_name(file, "mask"), who.user_id
        )
    audit(
        rt,
        who,
        "correction.create",
        "correction",
        res.correction.id,
        project.id,
        detail={"analysis": a, "dice": res.correction.dice_vs_prediction},
    )
    return correction_out(res.correction, who.name, res.until_finetune, res.finetune_job_id)


@router.get("/corrections")
def list_corrections(p: str, rt: RuntimeDep, who: CallerDep, limit: int = 100) -> Page:
    project = project_for(rt, who, p, "viewer", "correction.list")
    with rt.session() as s:
        rows = repo.list_corrections(s, project.id, limit=min(max(limit, 1), 1000))
        names = {u.id: u.name for u in repo.list_users(s)}
    return Page(
        items=[correction_out(c, names.get(c.author_id or "")) for c in rows], total=len(rows)
    )


@router.get("/review-queue")
def review_queue(p: str, rt: RuntimeDep, who: CallerDep, limit: int = 20, offset: int = 0) -> Page:
    project = project_for(rt, who, p, "viewer", "review.read")
    with rt.session() as s:
        rows = repo.review_queue(
            s, project.id, limit=min(max(limit, 1), 200), offset=max(offset, 0)
        )
        total = repo.review_queue_size(s, project.id)
        items = [
            ReviewItemOut(
                analysis=analysis_out(a, False),
                image=image_out(repo.get_image(s, a.image_id, project.id)),
            )
            for a in rows
        ]
    return Page(items=items, total=total)
