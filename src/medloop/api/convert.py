"""Records -> API schemas (the one place the API's JSON shapes are filled)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from medloop.api.schemas import (
    AgreementOut,
    AnalysisOut,
    AuditEventOut,
    CorrectionOut,
    CurveOut,
    DicomInstanceOut,
    ImageOut,
    JobOut,
    ModelVersionOut,
    ProjectOut,
    PseudonymOut,
    ReferenceItemOut,
    ReferenceOut,
    ReferenceSummaryOut,
)
from medloop.api.schemas_admin import (
    ErasureOut,
    ErasurePreviewOut,
    NewTokenOut,
    TokenOut,
    UserOut,
)
from medloop.domain.jobs import CurvePoint, JobRecord
from medloop.domain.records import (
    AnalysisRecord,
    AuditRecord,
    CorrectionRecord,
    DicomInstanceRecord,
    ErasureRecord,
    ImageRecord,
    PseudonymRecord,
    ReferenceRecord,
    TokenRecord,
    UserRecord,
)
from medloop.services.corrections import CorrectionResult
from medloop.services.erasure import ErasurePreview
from medloop.services.model_versions import VersionView
from medloop.services.projects import ProjectView
from medloop.services.references import ReferenceItem

__all__ = [
    "analysis_out",
    "audit_out",
    "correction_out",
    "correction_result_out",
    "curve_out",
    "dicom_instance_out",
    "erasure_out",
    "image_out",
    "job_out",
    "new_token_out",
    "preview_out",
    "project_out",
    "pseudonym_out",
    "reference_item_out",
    "reference_out",
    "summary_out",
    "token_out",
    "user_out",
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
            "archived_at": p.archived_at,
        }
    )


def image_out(i: ImageRecord) -> ImageOut:
    return ImageOut.model_validate(i, from_attributes=True)


def reference_out(r: ReferenceRecord) -> ReferenceOut:
    return ReferenceOut.model_validate(r, from_attributes=True)


def reference_item_out(item: ReferenceItem) -> ReferenceItemOut:
    image = item.image
    return ReferenceItemOut.model_validate(
        {
            **asdict(item.pair),
            "filename": image.filename,
            "width": image.width,
            "height": image.height,
            "trained_by": list(item.trained_by),
        }
    )


def summary_out(cells: list[tuple[str, str | None, int]]) -> ReferenceSummaryOut:
    splits: dict[str, int] = {}
    groups: dict[str, int] = {}
    for split, group, n in cells:
        splits[split] = splits.get(split, 0) + n
        groups[group or ""] = groups.get(group or "", 0) + n
    return ReferenceSummaryOut(
        total=sum(splits.values()),
        splits=splits,
        groups=groups,
        cells=[{"split": sp, "group": g, "count": n} for sp, g, n in cells],
    )


def analysis_out(a: AnalysisRecord, corrected: bool) -> AnalysisOut:
    # a volume's measurements have mm³ (a volume always has its spacing), a 2D one's none
    volume = any(m.get("volume_mm3") is not None for m in a.measurements)
    return AnalysisOut.model_validate({**asdict(a), "corrected": corrected, "volume": volume})


def correction_out(
    c: CorrectionRecord, until: int | None = None, job: str | None = None
) -> CorrectionOut:
    return CorrectionOut.model_validate(
        {
            **asdict(c),
            "author": c.author_name,
            "corrections_until_finetune": until,
            "finetune_job_id": job,
            "effort": None
            if c.effort is None
            else {**c.effort.to_dict(), "dice_vs_prediction": c.dice_vs_prediction},
        }
    )


def correction_result_out(r: CorrectionResult) -> CorrectionOut:
    out = correction_out(r.correction, r.until_finetune, r.finetune_job_id)
    agreed = [AgreementOut.model_validate(a.to_dict()) for a in r.agreement]
    return out.model_copy(update={"agreement": agreed})


def _marked_lineage(view: VersionView) -> dict[str, Any]:
    lineage = view.record.lineage.to_dict()
    for ref in lineage.get("data", ()):
        if ref.get("key") in view.erased:
            ref["erased"] = True
    erased_held = [c for c in lineage.get("held_out_corrections", ()) if c in view.erased]
    if erased_held:
        lineage["erased_held_out"] = erased_held
    return lineage


def version_out(view: VersionView, history: list[dict[str, Any]] | None = None) -> ModelVersionOut:
    v = view.record
    return ModelVersionOut(
        history=history or [],
        version=v.name,
        status=v.status.value,
        parent=v.parent,
        kind=v.kind,
        created_at=v.created_at,
        metrics=v.metrics,
        lineage=_marked_lineage(view),
        report=v.report,
        files=dict(v.files),
        erased_data=len(view.erased),
    )


def job_out(j: JobRecord) -> JobOut:
    return JobOut.model_validate(j.to_dict())


def audit_out(e: AuditRecord) -> AuditEventOut:
    return AuditEventOut.model_validate(e, from_attributes=True)


def dicom_instance_out(r: DicomInstanceRecord) -> DicomInstanceOut:
    return DicomInstanceOut.model_validate(r, from_attributes=True)


def pseudonym_out(p: PseudonymRecord) -> PseudonymOut:
    return PseudonymOut.model_validate(p, from_attributes=True)


def user_out(u: UserRecord) -> UserOut:
    return UserOut.model_validate(u, from_attributes=True)


def token_out(t: TokenRecord) -> TokenOut:
    return TokenOut.model_validate({**asdict(t), "active": t.active(datetime.now(UTC))})


def new_token_out(t: TokenRecord, secret: str) -> NewTokenOut:
    return NewTokenOut.model_validate({**token_out(t).model_dump(), "token": secret})


def erasure_out(e: ErasureRecord) -> ErasureOut:
    return ErasureOut.model_validate(e, from_attributes=True)


def preview_out(p: ErasurePreview) -> ErasurePreviewOut:
    return ErasurePreviewOut(
        scope=p.scope,
        counts=p.counts,
        images=[image_out(i) for i in p.images],
        versions=p.versions,
    )


def curve_out(points: list[tuple[int, CurvePoint]], after: int) -> CurveOut:
    return CurveOut(
        points=[asdict(p) for _, p in points],
        last=points[-1][0] if points else after,
    )
