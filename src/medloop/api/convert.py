"""Records -> API schemas (the one place the API's JSON shapes are filled)."""

from __future__ import annotations

from medloop.api.schemas import (
    AnalysisOut,
    AuditEventOut,
    CorrectionOut,
    DicomInstanceOut,
    ImageOut,
    JobOut,
    ModelVersionOut,
    ProjectOut,
    PseudonymOut,
    ReferenceOut,
)
from medloop.domain.jobs import JobRecord
from medloop.domain.ports import VersionRecord
from medloop.domain.records import (
    AnalysisRecord,
    AuditRecord,
    CorrectionRecord,
    DicomInstanceRecord,
    ImageRecord,
    PseudonymRecord,
    ReferenceRecord,
)
from medloop.services.corrections import CorrectionResult
from medloop.services.projects import ProjectView

__all__ = [
    "analysis_out",
    "audit_out",
    "correction_out",
    "correction_result_out",
    "dicom_instance_out",
    "image_out",
    "job_out",
    "project_out",
    "pseudonym_out",
    "reference_out",
    "version_out",
]


def project_out(view: ProjectView) -> ProjectOut:
    p = view.project
    return ProjectOut.model_validate(
        {
            **p.settings.model_dump(),
            "id": p.id,
            "name": p.name,
            "production_version": view.production_version,
            "created_at": p.created_at,
        }
    )


def image_out(i: ImageRecord) -> ImageOut:
    return ImageOut(
        id=i.id,
        project_id=i.project_id,
        sha256=i.sha256,
        filename=i.filename,
        width=i.width,
        height=i.height,
        channels=i.channels,
        frames=i.frames,
        spacing_mm=None if i.spacing_mm is None else list(i.spacing_mm),
        metadata=i.metadata,
        created_at=i.created_at,
    )


def reference_out(r: ReferenceRecord) -> ReferenceOut:
    return ReferenceOut(id=r.id, image_id=r.image_id, split=r.split, mask_sha256=r.mask_sha256)


def analysis_out(a: AnalysisRecord, corrected: bool) -> AnalysisOut:
    return AnalysisOut.model_validate(
        {
            "id": a.id,
            "project_id": a.project_id,
            "image_id": a.image_id,
            "model_version": a.model_version,
            "uncertainty": a.uncertainty,
            "measurements": list(a.measurements),
            "corrected": corrected,
            "frame": a.frame,
            "created_at": a.created_at,
        }
    )


def correction_out(
    c: CorrectionRecord, until: int | None = None, job: str | None = None
) -> CorrectionOut:
    return CorrectionOut(
        id=c.id,
        analysis_id=c.analysis_id,
        image_id=c.image_id,
        model_version=c.model_version,
        author=c.author_name,
        dice_vs_prediction=c.dice_vs_prediction,
        held_out=c.held_out,
        seq=c.seq,
        frame=c.frame,
        corrections_until_finetune=until,
        finetune_job_id=job,
        created_at=c.created_at,
    )


def correction_result_out(r: CorrectionResult) -> CorrectionOut:
    return correction_out(r.correction, r.until_finetune, r.finetune_job_id)


def version_out(v: VersionRecord) -> ModelVersionOut:
    return ModelVersionOut(
        version=v.name,
        status=v.status.value,
        parent=v.parent,
        kind=v.kind,
        created_at=v.created_at,
        metrics=v.metrics,
        lineage=v.lineage.to_dict(),
        report=v.report,
        files=dict(v.files),
    )


def job_out(j: JobRecord) -> JobOut:
    return JobOut.model_validate(j.to_dict())


def audit_out(e: AuditRecord) -> AuditEventOut:
    return AuditEventOut(
        id=e.id,
        at=e.at,
        actor_name=e.actor_name,
        action=e.action,
        resource_type=e.resource_type,
        resource_id=e.resource_id,
        project_id=e.project_id,
        client_ip=e.client_ip,
        outcome=e.outcome,
        detail=e.detail,
    )


def dicom_instance_out(r: DicomInstanceRecord) -> DicomInstanceOut:
    return DicomInstanceOut(
        sop_instance_uid=r.sop_instance_uid,
        study_instance_uid=r.study_instance_uid,
        series_instance_uid=r.series_instance_uid,
        kind=r.kind,
        state=r.state,
        image_id=r.image_id,
        attempts=r.attempts,
        next_attempt_at=r.next_attempt_at,
        last_error=r.last_error,
        detail=r.detail,
        updated_at=r.updated_at,
    )


def pseudonym_out(p: PseudonymRecord) -> PseudonymOut:
    return PseudonymOut(
        kind=p.kind, original=p.original, pseudonym=p.pseudonym, created_at=p.created_at
    )
