"""Records -> API schemas (the one place the API's JSON shapes are filled)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

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
    return ImageOut.model_validate(i, from_attributes=True)


def reference_out(r: ReferenceRecord) -> ReferenceOut:
    return ReferenceOut.model_validate(r, from_attributes=True)


def analysis_out(a: AnalysisRecord, corrected: bool) -> AnalysisOut:
    return AnalysisOut.model_validate({**asdict(a), "corrected": corrected})


def correction_out(
    c: CorrectionRecord, until: int | None = None, job: str | None = None
) -> CorrectionOut:
    return CorrectionOut.model_validate(
        {
            **asdict(c),
            "author": c.author_name,
            "corrections_until_finetune": until,
            "finetune_job_id": job,
        }
    )


def correction_result_out(r: CorrectionResult) -> CorrectionOut:
    return correction_out(r.correction, r.until_finetune, r.finetune_job_id)


def version_out(v: VersionRecord, history: list[dict[str, Any]] | None = None) -> ModelVersionOut:
    return ModelVersionOut(
        history=history or [],
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
    return AuditEventOut.model_validate(e, from_attributes=True)


def dicom_instance_out(r: DicomInstanceRecord) -> DicomInstanceOut:
    return DicomInstanceOut.model_validate(r, from_attributes=True)


def pseudonym_out(p: PseudonymRecord) -> PseudonymOut:
    return PseudonymOut.model_validate(p, from_attributes=True)
