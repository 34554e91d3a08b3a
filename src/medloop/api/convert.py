"""Database rows -> API schemas."""

from __future__ import annotations

from typing import Any

from medloop.api.schemas import (
    AnalysisOut,
    AuditEventOut,
    CorrectionOut,
    ImageOut,
    JobOut,
    ProjectOut,
)
from medloop.jobs import JobRecord
from medloop.storage.models import Analysis, AuditEvent, Correction, Image, Project

__all__ = ["analysis_out", "audit_out", "correction_out", "image_out", "job_out", "project_out"]


def project_out(p: Project, production: str | None) -> ProjectOut:
    return ProjectOut.model_validate(
        {
            "id": p.id,
            "name": p.name,
            "labels": p.labels,
            "image_kind": p.image_kind,
            "learning": p.learning,
            "production_version": production,
            "created_at": p.created_at,
        }
    )


def image_out(i: Image) -> ImageOut:
    spacing = (
        None
        if i.spacing_row_mm is None
        else [i.spacing_row_mm, i.spacing_col_mm or i.spacing_row_mm]
    )
    return ImageOut(
        id=i.id,
        project_id=i.project_id,
        sha256=i.sha256,
        filename=i.filename,
        width=i.width,
        height=i.height,
        channels=i.channels,
        spacing_mm=spacing,
        metadata=i.meta or {},
        created_at=i.created_at,
    )


def analysis_out(a: Analysis, corrected: bool) -> AnalysisOut:
    return AnalysisOut.model_validate(
        {
            "id": a.id,
            "project_id": a.project_id,
            "image_id": a.image_id,
            "model_version": a.model_version,
            "uncertainty": a.uncertainty,
            "measurements": a.measurements.get("classes", []),
            "corrected": corrected,
            "frame": a.frame,
            "created_at": a.created_at,
        }
    )


def correction_out(
    c: Correction, author: str | None, until: int | None = None, job: str | None = None
) -> CorrectionOut:
    return CorrectionOut(
        id=c.id,
        analysis_id=c.analysis_id,
        image_id=c.image_id,
        model_version=c.model_version,
        author=author,
        dice_vs_prediction=c.dice_vs_prediction,
        held_out=c.held_out,
        seq=c.seq,
        corrections_until_finetune=until,
        finetune_job_id=job,
        created_at=c.created_at,
    )


def job_out(j: JobRecord) -> JobOut:
    d: dict[str, Any] = j.to_dict()
    return JobOut.model_validate(d)


def audit_out(e: AuditEvent) -> AuditEventOut:
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
