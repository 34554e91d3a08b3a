"""DICOM routes: analyses as DICOM SEG, corrections sent as SEG, the project's DICOM
settings (DICOMweb server, de-identification on ingest), the DICOMweb sync and the
pseudonym map.

Every route answers only to the project's members (404 to others) and is audited.
The pseudonym map, the settings and the sync are for admins only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Response, UploadFile, status
from pydantic import BaseModel, ConfigDict

from medloop.api.convert import correction_out, job_out
from medloop.api.routers._files import chunks, safe_name
from medloop.api.schemas import JobOut, Page
from medloop.api.security import CallerDep, RuntimeDep, audit, audit_failure, project_for
from medloop.domain.dicom import DicomSettings, DicomwebSettings
from medloop.errors import InputError
from medloop.services.server_data import correct_from_seg, read_upload
from medloop.storage import repo_dicom
from medloop.storage import repositories as repo

__all__ = ["DicomSettingsIn", "router"]


router = APIRouter(prefix="/api/v1/projects/{p}", tags=["dicom"])


class DicomSettingsIn(BaseModel):
    """``PUT .../dicom``: the DICOMweb server (or ``null``) and de-identification on ingest.

    A password or token left out keeps the one stored.
    """

    model_config = ConfigDict(extra="forbid")

    dicomweb: DicomwebSettings | None = None
    deidentify_on_ingest: bool = False


@router.get(
    "/analyses/{a}/seg",
    response_class=Response,
    responses={200: {"content": {"application/dicom": {}}}},
)
def get_seg(p: str, a: str, rt: RuntimeDep, who: CallerDep) -> Response:
    """The analysis as DICOM SEG (409 if the analysed image is not DICOM)."""
    from medloop.dicom.results import analysis_seg

    project = project_for(rt, who, p, "viewer", "analysis.seg")
    with rt.session() as s:
        analysis = repo.get_analysis(s, a, project.id)
    data = analysis_seg(rt, project, analysis)
    audit(rt, who, "analysis.seg", "analysis", a, project.id)
    return Response(
        data,
        media_type="application/dicom",
        headers={"Content-Disposition": f'attachment; filename="{a}.seg.dcm"'},
    )


@router.post("/corrections/seg", status_code=status.HTTP_201_CREATED)
def create_seg_corrections(
    p: str, rt: RuntimeDep, who: CallerDep, file: Annotated[UploadFile, File()]
) -> Page:
    """Corrections from a DICOM SEG, matched to analyses by the instances it references."""
    project = project_for(rt, who, p, "annotator", "correction.create")
    with audit_failure(rt, who, "correction.create", "correction", project.id, {"source": "seg"}):
        results = correct_from_seg(
            rt,
            project,
            read_upload(chunks(file), rt.settings.max_upload_bytes),
            safe_name(file, "seg.dcm"),
            who.user_id,
        )
    items = []
    for res in results:
        c = res.correction
        audit(
            rt,
            who,
            "correction.create",
            "correction",
            c.id,
            project.id,
            detail={"analysis": c.analysis_id, "dice": c.dice_vs_prediction, "source": "seg"},
        )
        items.append(correction_out(c, who.name, res.until_finetune, res.finetune_job_id))
    return Page(items=items, total=len(items))


@router.get("/dicom")
def get_dicom_settings(p: str, rt: RuntimeDep, who: CallerDep) -> dict[str, Any]:
    """The project's DICOM settings, without secrets."""
    project = project_for(rt, who, p, "admin", "dicom.settings.read")
    return DicomSettings.load(project.dicom).public()


@router.put("/dicom")
def put_dicom_settings(
    p: str, body: DicomSettingsIn, rt: RuntimeDep, who: CallerDep
) -> dict[str, Any]:
    """Connect the project to a DICOMweb server and/or de-identify DICOM on ingest."""
    project = project_for(rt, who, p, "admin", "dicom.settings.update")
    old = DicomSettings.load(project.dicom)
    new = DicomSettings(
        dicomweb=body.dicomweb,
        deidentify=old.deidentify.model_copy(update={"enabled": body.deidentify_on_ingest}),
    ).merged_secrets(old)
    if new.deidentify.enabled:
        new = new.with_key()
    with rt.session() as s:
        repo_dicom.set_dicom_settings(s, project.id, new.model_dump())
    public = new.public()
    audit(rt, who, "dicom.settings.update", "project", project.id, project.id, detail=public)
    if new.dicomweb is not None and new.dicomweb.enabled:
        rt.queue.enqueue(project.id, "dicomweb_sync", {"trigger": "settings"}, who.user_id, True)
        rt.wake_worker()
    return public


@router.post("/dicomweb/sync", status_code=status.HTTP_202_ACCEPTED)
def sync_now(p: str, rt: RuntimeDep, who: CallerDep) -> JobOut:
    """Queue a DICOMweb sync now (one queued sync per project at most)."""
    project = project_for(rt, who, p, "admin", "dicomweb.sync")
    settings = DicomSettings.load(project.dicom)
    if settings.dicomweb is None:
        raise InputError("the project has no DICOMweb server: PUT .../dicom first")
    job = rt.queue.enqueue(
        project.id, "dicomweb_sync", {"trigger": "request"}, who.user_id, coalesce=True
    )
    rt.wake_worker()
    audit(rt, who, "dicomweb.sync", "job", job.id, project.id)
    return job_out(job)


@router.get("/dicomweb/instances")
def sync_state(
    p: str, rt: RuntimeDep, who: CallerDep, state: str | None = None, limit: int = 100
) -> dict[str, Any]:
    """The sync's memory: counts by kind and state, and the latest instances."""
    project = project_for(rt, who, p, "admin", "dicomweb.read")
    with rt.session() as s:
        counts = repo_dicom.count_dicom_instances(s, project.id)
        rows = repo_dicom.list_dicom_instances(s, project.id, state, limit=min(max(limit, 1), 1000))
    items = [
        {
            "sop_instance_uid": r.sop_instance_uid,
            "study_instance_uid": r.study_instance_uid,
            "series_instance_uid": r.series_instance_uid,
            "kind": r.kind,
            "state": r.state,
            "image_id": r.image_id,
            "attempts": r.attempts,
            "next_attempt_at": r.next_attempt_at,
            "last_error": r.last_error,
            "detail": r.detail,
            "updated_at": r.updated_at,
        }
        for r in rows
    ]
    return {"counts": counts, "items": items}


@router.get("/pseudonyms")
def pseudonyms(p: str, rt: RuntimeDep, who: CallerDep, limit: int = 1000, offset: int = 0) -> Page:
    """The de-identification pseudonym map (admins only; every read is audited)."""
    project = project_for(rt, who, p, "admin", "pseudonym.read")
    with rt.session() as s:
        rows = repo_dicom.list_pseudonyms(
            s, project.id, limit=min(max(limit, 1), 10_000), offset=max(offset, 0)
        )
    audit(rt, who, "pseudonym.read", "project", project.id, project.id, detail={"count": len(rows)})
    items = [
        {
            "kind": r.kind,
            "original": r.original,
            "pseudonym": r.pseudonym,
            "created_at": r.created_at,
        }
        for r in rows
    ]
    return Page(items=items, total=len(items))
