"""What the server keeps, as plain immutable records.

The storage layer turns database rows into these at its boundary; services and the
API see only records, never rows or sessions. Ids are 32 hex characters; times are
timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from medloop.domain.settings import ProjectSettings
from medloop.domain.viewer import VoxelHeader

__all__ = [
    "AnalysisRecord",
    "AuditRecord",
    "CorrectionEffort",
    "CorrectionRecord",
    "DicomInstanceRecord",
    "ErasureRecord",
    "ImageRecord",
    "ProjectRecord",
    "PseudonymRecord",
    "ReferenceRecord",
    "TokenRecord",
    "UserRecord",
]


@dataclass(frozen=True)
class ProjectRecord:
    """A segmentation task and its settings.

    ``dicom`` is the stored DICOM settings JSON (it holds secrets: only the DICOM
    services read it, and the API shows it only through their public view).
    ``archived_at`` is set while the project is archived (read-only, hidden from lists).
    """

    id: str
    name: str
    settings: ProjectSettings
    created_at: datetime
    dicom: dict[str, Any] = field(default_factory=dict)
    archived_at: datetime | None = None

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


@dataclass(frozen=True)
class ImageRecord:
    """An uploaded image: content-addressed bytes (``blob_key``) plus what was read from them.

    ``spacing_mm`` is ``(row, col)`` in millimetres when the source states it;
    ``frames`` > 1 for multi-frame DICOM (each frame is analysed on its own).
    ``headers_blob_key``: for a volume assembled from a DICOM series or an enhanced
    multi-frame image, the blob of its source headers (no pixel data), which a DICOM SEG
    of the volume references; ``None`` for every other image.
    ``viewer_*``: a single-channel volume's voxels as the browser's viewer fetches them
    (:mod:`medloop.services.viewer_copies`), prepared once; ``None`` until then.
    """

    id: str
    project_id: str
    sha256: str
    blob_key: str
    filename: str
    content_type: str
    width: int
    height: int
    channels: int
    spacing_mm: tuple[float, float] | None
    metadata: dict[str, Any]
    created_at: datetime
    created_by: str | None = None
    frames: int = 1
    headers_blob_key: str | None = None
    headers_sha256: str | None = None
    viewer_blob_key: str | None = None
    viewer_sha256: str | None = None
    viewer_header: VoxelHeader | None = None

    @property
    def pixel_area_mm2(self) -> float | None:
        return None if self.spacing_mm is None else self.spacing_mm[0] * self.spacing_mm[1]

    @property
    def sop_instance_uid(self) -> str | None:
        uid = self.metadata.get("SOPInstanceUID")
        return str(uid) if uid else None


@dataclass(frozen=True)
class ReferenceRecord:
    """A reference image with its ground-truth label map, in a train/val/test split.

    ``group`` is a free reporting group (a stain, a site, a scanner), when given.
    """

    id: str
    project_id: str
    image_id: str
    mask_blob_key: str
    mask_sha256: str
    split: str
    created_at: datetime
    group: str | None = None


@dataclass(frozen=True)
class AnalysisRecord:
    """Model version V's result on image I (frame ``frame``): label map blob and figures.

    ``measurements`` holds one dict per foreground class
    (:class:`~medloop.domain.measurements.ClassMeasurement`); ``uncertainty`` is 0..1.
    ``viewer_*``: a volume's label map as the browser's viewer fetches it (the image's
    :attr:`ImageRecord.viewer_header`, ``uint8``), prepared once; ``None`` until then.
    """

    id: str
    project_id: str
    image_id: str
    model_version: str
    label_blob_key: str
    label_sha256: str
    uncertainty: float
    measurements: tuple[dict[str, Any], ...]
    created_at: datetime
    created_by: str | None = None
    frame: int = 0
    viewer_blob_key: str | None = None
    viewer_sha256: str | None = None


@dataclass(frozen=True)
class CorrectionEffort:
    """What a correction cost the clinician, as the client reported it (each ``None``
    when not reported): clicks given to the model, brush strokes, seconds of active
    editing."""

    clicks: int | None = None
    brush_strokes: int | None = None
    active_seconds: float | None = None

    @property
    def empty(self) -> bool:
        return self.clicks is None and self.brush_strokes is None and self.active_seconds is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "clicks": self.clicks,
            "brush_strokes": self.brush_strokes,
            "active_seconds": self.active_seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CorrectionEffort | None:
        """The stored record, or ``None`` for a correction stored without one."""
        if not data:
            return None
        return cls(data.get("clicks"), data.get("brush_strokes"), data.get("active_seconds"))


@dataclass(frozen=True)
class CorrectionRecord:
    """A clinician's label map for an analysis; numbered per project from 0 (``seq``).

    ``held_out`` corrections are never trained on: the gate scores on them.
    ``dice_vs_prediction`` is the agreement with the analysis it corrects (computed by
    the server); ``effort`` what the correction cost, when the client reported it.
    """

    id: str
    project_id: str
    analysis_id: str
    image_id: str
    mask_blob_key: str
    mask_sha256: str
    seq: int
    held_out: bool
    author_id: str | None
    author_name: str | None
    model_version: str
    dice_vs_prediction: float
    created_at: datetime
    frame: int = 0
    effort: CorrectionEffort | None = None


@dataclass(frozen=True)
class UserRecord:
    """A person or device; ``project_id`` binds it to one project (``None``: all).

    ``kind`` is ``person`` or ``device`` (their tokens' default expiry differs);
    ``last_used_at`` is the latest use of any of its tokens.
    """

    id: str
    name: str
    role: str
    project_id: str | None
    disabled: bool
    created_at: datetime
    kind: str = "person"
    last_used_at: datetime | None = None


@dataclass(frozen=True)
class TokenRecord:
    """One API token of a user (only its sha256 is stored; the secret is shown once).

    A token authenticates while it is neither revoked nor expired and its user is
    enabled. ``last_used_at`` is updated at most once a minute.
    """

    id: str
    user_id: str
    name: str
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    created_by: str | None = None

    def active(self, now: datetime) -> bool:
        """Whether the token still authenticates at ``now`` (its user aside)."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True)
class ErasureRecord:
    """An erasure of a patient's, a study's or an image's data from a project.

    The erased value itself is not kept: ``value_sha256`` lets an auditor check
    whether a given identifier was erased. ``counts`` says what was removed.
    """

    id: str
    project_id: str
    scope: str
    value_sha256: str
    reason: str
    actor_name: str
    actor_id: str | None
    job_id: str | None
    state: str
    counts: dict[str, int]
    created_at: datetime
    finished_at: datetime | None = None


@dataclass(frozen=True)
class AuditRecord:
    """One append-only audit event: who did what to which resource, when, from where."""

    id: int
    at: datetime
    actor_id: str | None
    actor_name: str
    action: str
    resource_type: str
    resource_id: str | None
    project_id: str | None
    client_ip: str | None
    outcome: str
    detail: dict[str, Any] | None


@dataclass(frozen=True)
class DicomInstanceRecord:
    """One instance seen on a project's DICOMweb server: the sync's memory of it."""

    id: str
    project_id: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    sop_class_uid: str
    kind: str
    state: str
    image_id: str | None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    detail: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class PseudonymRecord:
    """De-identification on ingest: an original identifier and the pseudonym that replaced it."""

    kind: str
    original: str
    pseudonym: str
    created_at: datetime
