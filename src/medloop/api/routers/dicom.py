"""DICOM administration of a project (admins only): its DICOM settings (DICOMweb server,
de-identification on ingest), the DICOMweb sync and its ledger, and the pseudonym map.

Analyses as DICOM SEG are served by the analyses router, corrections sent as SEG by
the corrections router. Every route here is audited; reading the pseudonym map is.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, status

from medloop.api.convert import dicom_instance_out, job_out, pseudonym_out
from medloop.api.deps import ServicesDep
from medloop.api.schemas import DicomSettingsIn, JobOut, Page, SyncLedgerOut
from medloop.api.security import ProjectAccess, allow

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/projects/{project}", tags=["dicom"])


@router.get("/dicom")
def get_dicom_settings(
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("admin", "dicom.settings.read", "project", polled=True)],
) -> dict[str, Any]:
    """The project's DICOM settings, without secrets."""
    return svc.dicom.settings(acc.project)


@router.put("/dicom")
def put_dicom_settings(
    body: DicomSettingsIn,
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("admin", "dicom.settings.update", "project")],
) -> dict[str, Any]:
    """Connect the project to a DICOMweb server and/or de-identify DICOM on ingest."""
    public = svc.dicom.configure(
        acc.project, body.dicomweb, body.deidentify_on_ingest, acc.who.user_id
    )
    acc.note(acc.project.id, **public)
    return public


@router.post("/dicomweb/sync", status_code=status.HTTP_202_ACCEPTED)
def sync_now(
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("admin", "dicomweb.sync", "job")],
) -> JobOut:
    """Queue a DICOMweb sync now (one queued sync per project at most)."""
    job = svc.dicom.sync_now(acc.project, acc.who.user_id)
    acc.note(job.id)
    return job_out(job)


@router.get("/dicomweb/instances")
def sync_state(
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("admin", "dicomweb.read", "project", polled=True)],
    state: str | None = None,
    limit: int = 100,
) -> SyncLedgerOut:
    """The sync's memory: counts by kind and state, and the latest instances."""
    ledger = svc.dicom.ledger(acc.project.id, state, limit)
    return SyncLedgerOut(counts=ledger.counts, items=[dicom_instance_out(r) for r in ledger.items])


@router.get("/pseudonyms")
def pseudonyms(
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("admin", "pseudonym.read", "project")],
    limit: int = 1000,
    offset: int = 0,
) -> Page:
    """The de-identification pseudonym map (admins only; every read is audited)."""
    rows = svc.dicom.pseudonyms(acc.project.id, limit, offset)
    acc.note(acc.project.id, count=len(rows))
    return Page(items=[pseudonym_out(r) for r in rows], total=len(rows))
