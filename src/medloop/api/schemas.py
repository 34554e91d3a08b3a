"""JSON shapes of the HTTP API (``/api/v1``). The client SDK mirrors these; it never imports them.

Request bodies that carry settings or job options are the domain's own models
(:class:`~medloop.domain.settings.ProjectSettings`, :data:`~medloop.domain.jobs.UserJobSpec`),
so every default and bound is written once, and bad values answer 422 before
anything is stored or queued.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from medloop.domain.dicom import DicomwebSettings
from medloop.domain.jobs import UserJobSpec
from medloop.domain.labels import Label
from medloop.domain.settings import ProjectSettings

__all__ = [
    "AnalysisOut",
    "AnalyzeRequest",
    "ArchiveOut",
    "AuditEventOut",
    "CorrectionOut",
    "CurveOut",
    "DicomInstanceOut",
    "DicomSettingsIn",
    "EffortOut",
    "ErrorOut",
    "ImageOut",
    "JobIn",
    "JobOut",
    "ModelVersionOut",
    "Page",
    "ProjectIn",
    "ProjectOut",
    "ProjectPatch",
    "PromoteIn",
    "PseudonymOut",
    "ReferenceItemOut",
    "ReferenceOut",
    "ReferenceSummaryOut",
    "ReviewItemOut",
    "SyncLedgerOut",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(BaseModel):
    """Every 4xx/5xx body: ``{"error": {"code": "...", "message": "..."}}``."""

    error: dict[str, str]


class ProjectIn(ProjectSettings):
    """``POST /api/v1/projects``: a name and the project's settings (defaults: the settings')."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

    def settings(self) -> ProjectSettings:
        """The settings part, without the name."""
        return ProjectSettings.model_validate(self.model_dump(exclude={"name"}))


class ProjectOut(ProjectSettings):
    """A project: its id, name, settings and production version."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    name: str
    production_version: str | None
    created_at: datetime
    archived_at: datetime | None = None


class ProjectPatch(_Strict):
    """``PATCH /api/v1/projects/{project}``: a JSON merge patch of the project's settings.

    Only the fields given change; inside ``learning``, ``acceptance`` and ``training``
    only the keys given change, and ``null`` puts a field back to its default. The
    result is validated as a whole (bounds and defaults: ``medloop.domain.settings``).
    Label values are fixed once the project holds label maps; names and colours are not.
    """

    labels: list[Label] | None = None
    image_kind: str | None = None
    spatial_dims: Literal[2, 3] | None = None
    learning: dict[str, Any] | None = None
    acceptance: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    finetune_every: int | None = None

    def patch(self) -> dict[str, Any]:
        """The merge patch: the fields that were sent (``null`` included)."""
        return self.model_dump(mode="json", include=self.model_fields_set)


class ImageOut(BaseModel):
    id: str
    project_id: str
    sha256: str
    filename: str
    width: int
    height: int
    channels: int
    frames: int = 1
    spacing_mm: list[float] | None
    metadata: dict[str, Any]
    created_at: datetime


class ReferenceOut(BaseModel):
    id: str
    image_id: str
    split: str
    group: str | None = None
    mask_sha256: str


class ReferenceItemOut(ReferenceOut):
    """A pair as the Data page lists it: with its image's name and size, and the versions
    that trained on it (a pair they trained on can only be erased, not deleted)."""

    filename: str
    width: int
    height: int
    created_at: datetime
    trained_by: list[str]


class ReferenceSummaryOut(BaseModel):
    """How many pairs, by split, by group, and by both (``group: null``: no group)."""

    total: int
    splits: dict[str, int]
    groups: dict[str, int]
    cells: list[dict[str, Any]]


class MeasurementOut(BaseModel):
    value: int
    name: str
    area_px: int
    area_mm2: float | None
    components: int
    largest_component_px: int
    largest_component_mm2: float | None
    volume_mm3: float | None = None
    """A volume's class size in mm³ (``area_px`` then counts voxels; ``None`` for 2D)."""
    largest_component_mm3: float | None = None


class AnalyzeRequest(_Strict):
    image_id: str = Field(min_length=1, max_length=64)
    version: str | None = Field(default=None, max_length=16)


class AnalysisOut(BaseModel):
    id: str
    project_id: str
    image_id: str
    model_version: str
    uncertainty: float
    measurements: list[MeasurementOut]
    corrected: bool
    created_at: datetime
    frame: int = 0
    """Which frame of a multi-frame DICOM image (0 otherwise)."""
    volume: bool = False
    """A volume's analysis: its mask is a NIfTI label volume, its views are ``/slice``."""


class EffortOut(BaseModel):
    """What a correction cost: as the client reported it (``None``: not reported), and the
    Dice between the model's first prediction and the submitted mask (computed by the server)."""

    clicks: int | None = None
    brush_strokes: int | None = None
    active_seconds: float | None = None
    dice_vs_prediction: float


class AgreementOut(BaseModel):
    """One class of a new correction against the prediction it corrects."""

    value: int
    name: str
    dice: float
    changed: int
    """Pixels (2D) or voxels (3D) that entered or left the class."""


class CorrectionOut(BaseModel):
    id: str
    analysis_id: str
    image_id: str
    model_version: str
    author: str | None
    dice_vs_prediction: float
    held_out: bool
    seq: int
    frame: int = 0
    corrections_until_finetune: int | None
    finetune_job_id: str | None
    created_at: datetime
    effort: EffortOut | None = None
    """``None`` when the correction came without an effort record."""
    agreement: list[AgreementOut] | None = None
    """Per class, on the answer to the submission only (``None`` when read back later)."""


class ReviewItemOut(BaseModel):
    analysis: AnalysisOut
    image: ImageOut


class ModelVersionOut(BaseModel):
    version: str
    status: str
    parent: str | None
    kind: str
    created_at: str
    metrics: dict[str, Any]
    lineage: dict[str, Any]
    """Where it came from; each data entry (and held-out correction) whose data was
    erased since is marked ``"erased": true`` and keeps only its ids and sha256."""
    report: dict[str, Any] | None
    files: dict[str, str] = Field(default_factory=dict)
    """Each stored file and its sha256."""
    history: list[dict[str, Any]] = Field(default_factory=list)
    """This version's events, oldest first: created, promoted (by whom, why), rejected,
    rolled back."""
    erased_data: int = 0
    """How many of the pairs and corrections it saw were erased since."""


class PromoteIn(_Strict):
    """``POST .../models/{version}/promote``: why (needed to overrule the gate's rejection)."""

    reason: str | None = Field(default=None, max_length=1000)


JobIn = UserJobSpec
"""``POST .../jobs``: ``{"kind": ..., "options": {...}}``, options typed per kind (imports and
erasures have routes of their own)."""


class JobOut(BaseModel):
    id: str
    project_id: str
    kind: str
    state: str
    progress: float
    options: dict[str, Any]
    log_tail: str
    result: dict[str, Any] | None
    error: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None


class ArchiveOut(BaseModel):
    """``POST .../reference/import``: the queued import job and how many pairs the zip holds."""

    job: JobOut
    pairs: int


class CurveOut(BaseModel):
    """``GET .../jobs/{job}/curve``: the job's loss and validation Dice by step.

    ``points`` are in the order written; ``last`` is the id to pass as ``after`` to get
    only newer points.
    """

    points: list[dict[str, Any]]
    last: int


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    actor_name: str
    action: str
    resource_type: str
    resource_id: str | None
    project_id: str | None
    client_ip: str | None
    outcome: str
    detail: dict[str, Any] | None


class DicomSettingsIn(_Strict):
    """``PUT .../dicom``: the DICOMweb server (or ``null``) and de-identification on ingest.

    A password or token left out keeps the one stored.
    """

    dicomweb: DicomwebSettings | None = None
    deidentify_on_ingest: bool = False


class DicomInstanceOut(BaseModel):
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    kind: str
    state: str
    image_id: str | None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    detail: dict[str, Any]
    updated_at: datetime


class SyncLedgerOut(BaseModel):
    counts: dict[str, dict[str, int]]
    items: list[DicomInstanceOut]


class PseudonymOut(BaseModel):
    kind: str
    original: str
    pseudonym: str
    created_at: datetime


class Page(BaseModel):
    """A list answer: ``items`` plus the ``total`` when known."""

    items: list[Any]
    total: int | None = None
