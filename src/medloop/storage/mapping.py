"""Rows -> records: the one place database rows become :mod:`medloop.domain.records`.

Repositories return only what these functions make, so no ORM object (and no lazy
load on a closed session) ever leaves :mod:`medloop.storage`.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar

from medloop.domain.jobs import JobRecord
from medloop.domain.model import Lineage, ModelManifest, VersionStatus
from medloop.domain.ports import VersionRecord
from medloop.domain.records import (
    AnalysisRecord,
    AuditRecord,
    CorrectionEffort,
    CorrectionRecord,
    DicomInstanceRecord,
    ErasureRecord,
    ImageRecord,
    ProjectRecord,
    PseudonymRecord,
    ReferenceRecord,
    TokenRecord,
    UserRecord,
)
from medloop.domain.settings import ProjectSettings
from medloop.domain.viewer import VoxelHeader
from medloop.storage.models import (
    Analysis,
    ApiToken,
    AuditEvent,
    Base,
    Correction,
    DicomInstance,
    Erasure,
    Image,
    Job,
    ModelFile,
    ModelVersion,
    Project,
    Pseudonym,
    ReferencePair,
    User,
)

__all__ = [
    "analysis_record",
    "audit_record",
    "correction_record",
    "dicom_instance_record",
    "erasure_record",
    "image_record",
    "job_record",
    "project_record",
    "pseudonym_record",
    "reference_record",
    "token_record",
    "user_record",
    "version_record",
]


R = TypeVar("R")


def _copy(record: type[R], row: Base, **values: Any) -> R:
    """A ``record`` of the row's same-named columns, with ``values`` instead of some."""
    names = [f.name for f in fields(record)]  # type: ignore[arg-type]
    return record(**{n: values[n] if n in values else getattr(row, n) for n in names})


def job_record(row: Job) -> JobRecord:
    return _copy(
        JobRecord,
        row,
        options=dict(row.options or {}),
        result=None if row.result is None else dict(row.result),
    )


def project_record(row: Project) -> ProjectRecord:
    """Raises ``ConfigError`` if the stored settings no longer validate."""
    return ProjectRecord(
        id=row.id,
        name=row.name,
        settings=ProjectSettings.parse(row.settings),
        created_at=row.created_at,
        dicom=dict(row.dicom or {}),
        archived_at=row.archived_at,
    )


def user_record(row: User, last_used_at: datetime | None) -> UserRecord:
    return _copy(UserRecord, row, last_used_at=last_used_at)


def token_record(row: ApiToken) -> TokenRecord:
    return _copy(TokenRecord, row)


def erasure_record(row: Erasure) -> ErasureRecord:
    return _copy(ErasureRecord, row, counts={k: int(v) for k, v in (row.counts or {}).items()})


def image_record(row: Image) -> ImageRecord:
    spacing = (
        None
        if row.spacing_row_mm is None
        else (float(row.spacing_row_mm), float(row.spacing_col_mm or row.spacing_row_mm))
    )
    return _copy(
        ImageRecord,
        row,
        spacing_mm=spacing,
        metadata=dict(row.meta or {}),
        frames=max(1, row.frames or 1),
        viewer_header=_viewer_header(row),
    )


def _viewer_header(row: Image) -> VoxelHeader | None:
    """The image's viewer header, or ``None`` (also for one that no longer parses: the
    viewer then decodes the image as if it had no prepared copy)."""
    if row.viewer_header is None or row.viewer_blob_key is None:
        return None
    try:
        return VoxelHeader.from_json(row.viewer_header)
    except ValueError:
        return None


def reference_record(row: ReferencePair) -> ReferenceRecord:
    return _copy(ReferenceRecord, row, group=row.group_name)


def analysis_record(row: Analysis) -> AnalysisRecord:
    classes = (row.measurements or {}).get("classes", [])
    return _copy(AnalysisRecord, row, measurements=tuple(dict(m) for m in classes))


def correction_record(row: Correction, author_name: str | None, frame: int) -> CorrectionRecord:
    return _copy(
        CorrectionRecord,
        row,
        author_name=author_name,
        frame=frame,
        effort=CorrectionEffort.from_dict(row.effort),
    )


def audit_record(row: AuditEvent) -> AuditRecord:
    return _copy(AuditRecord, row, detail=None if row.detail is None else dict(row.detail))


def dicom_instance_record(row: DicomInstance) -> DicomInstanceRecord:
    return _copy(DicomInstanceRecord, row, detail=dict(row.detail or {}))


def pseudonym_record(row: Pseudonym) -> PseudonymRecord:
    return _copy(PseudonymRecord, row)


def version_record(row: ModelVersion, files: list[ModelFile]) -> VersionRecord:
    return VersionRecord(
        name=row.name,
        status=VersionStatus(row.status),
        manifest=ModelManifest.from_dict(row.manifest),
        lineage=Lineage.from_dict(row.lineage),
        metrics=dict(row.metrics or {}),
        files={f.name: f.sha256 for f in files},
        report=None if row.report is None else dict(row.report),
    )
