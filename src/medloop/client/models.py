"""The JSON shapes of the medloop HTTP API (``/api/v1``), as the client sees them.

These mirror ``medloop.api.schemas`` without importing it (the client must stay light: no
torch, numpy, FastAPI or SQLAlchemy). Answers are parsed leniently: fields the server adds
later are ignored (``extra="ignore"``), so an older client keeps working against a newer
server. Input models (:class:`Label`, :class:`Learning`, :class:`ProjectIn`, :class:`JobIn`)
carry no value limits of their own: the server checks them and answers ``422`` →
:class:`medloop.client.BadRequest` with a message naming the problem.

Example::

    page = client.list_analyses("knee")      # Page[AnalysisOut]
    for a in page.items:
        print(a.id, a.model_version, a.uncertainty, [m.area_px for m in a.measurements])
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AcceptanceRule",
    "AcceptanceRuleIn",
    "AnalysisOut",
    "AnalyzeRequest",
    "ApiModel",
    "AuditEventOut",
    "CorrectionOut",
    "ErrorOut",
    "Health",
    "ImageOut",
    "JobIn",
    "JobKind",
    "JobOut",
    "JobState",
    "Label",
    "LabelIn",
    "Learning",
    "LearningIn",
    "Me",
    "MeasurementOut",
    "ModelVersionOut",
    "Page",
    "ProjectIn",
    "ProjectOut",
    "ReferenceOut",
    "ReviewItemOut",
]

JobKind = Literal["train", "finetune", "evaluate"]
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINISHED_JOB_STATES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})

T = TypeVar("T")


class ApiModel(BaseModel):
    """Base of every mirrored model: unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")


class ErrorOut(ApiModel):
    """Every 4xx/5xx body: ``{"error": {"code": "...", "message": "..."}}``."""

    error: dict[str, str]


class Health(BaseModel):
    """``GET /healthz``: ``status`` is ``"ok"``; whatever else the server reports is kept."""

    model_config = ConfigDict(extra="allow")

    status: str


class Me(ApiModel):
    """``GET /api/v1/me``: the identity behind the token."""

    id: str
    name: str
    role: str
    project_id: str | None = None


class Label(ApiModel):
    """One class of a project: label ``value`` (1..255) in masks, ``name``, ``#rrggbb`` colour."""

    value: int
    name: str
    color: str


class AcceptanceRule(ApiModel):
    """The promotion gate: largest allowed per-class Dice drop, least held-out gain."""

    max_class_dice_drop: float = 0.01
    min_heldout_gain: float = 0.0


class Learning(ApiModel):
    """Per-project learning settings; ``finetune_every`` = corrections per automatic fine-tune (0 = never)."""

    correction_weight: float = 16.0
    replay_size: int = 256
    finetune_every: int = 10
    steps: int = 300
    lr: float = 3e-4
    held_out_share: float = 0.2
    acceptance: AcceptanceRule = Field(default_factory=AcceptanceRule)
    train_steps: int = 2000
    patch_size: int = 256
    channels: list[int] = Field(default_factory=lambda: [16, 32, 64, 128, 256])
    color: str = "auto"


# The server-side names, for readers comparing with ``medloop.api.schemas``.
LabelIn = Label
AcceptanceRuleIn = AcceptanceRule
LearningIn = Learning


class ProjectIn(ApiModel):
    """``POST /api/v1/projects`` body."""

    name: str
    labels: list[Label]
    image_kind: str = "microscopy"
    learning: Learning = Field(default_factory=Learning)


class ProjectOut(ApiModel):
    """A project (a segmentation task) and its production model version."""

    id: str
    name: str
    labels: list[Label]
    image_kind: str
    learning: Learning
    production_version: str | None = None
    created_at: datetime


class ImageOut(ApiModel):
    """A stored image; ``sha256`` of its bytes (uploads are content-addressed)."""

    id: str
    project_id: str
    sha256: str
    filename: str
    width: int
    height: int
    channels: int
    spacing_mm: list[float] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


class ReferenceOut(ApiModel):
    """A reference image + mask pair (training data) and its split."""

    id: str
    image_id: str
    split: str
    mask_sha256: str


class MeasurementOut(ApiModel):
    """Per-class measurements of an analysis (areas in mm² when the image has a spacing)."""

    value: int
    name: str
    area_px: int
    area_mm2: float | None = None
    components: int
    largest_component_px: int
    largest_component_mm2: float | None = None


class AnalyzeRequest(ApiModel):
    """``POST .../analyses`` JSON body: analyse a stored image (``version``: default production)."""

    image_id: str
    version: str | None = None


class AnalysisOut(ApiModel):
    """One analysis: which model version segmented which image, and what it measured."""

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


class CorrectionOut(ApiModel):
    """A stored correction; ``dice_vs_prediction`` is its agreement with the model's mask.

    ``corrections_until_finetune`` counts down to the next automatic fine-tune (``None``
    when automatic fine-tuning is off); ``finetune_job_id`` is set when this correction
    started (or joined) a fine-tune job.
    """

    id: str
    analysis_id: str
    image_id: str
    model_version: str
    author: str | None = None
    dice_vs_prediction: float
    held_out: bool
    seq: int
    corrections_until_finetune: int | None = None
    finetune_job_id: str | None = None
    created_at: datetime


class ReviewItemOut(ApiModel):
    """An uncorrected analysis in the review queue, with its image."""

    analysis: AnalysisOut
    image: ImageOut


class ModelVersionOut(ApiModel):
    """A model version with status (``production``, ``candidate``, ...), parent and metrics."""

    version: str
    status: str
    parent: str | None = None
    kind: str
    created_at: str
    metrics: dict[str, Any] = Field(default_factory=dict)
    lineage: dict[str, Any] = Field(default_factory=dict)
    report: dict[str, Any] | None = None


class JobIn(ApiModel):
    """``POST .../jobs`` body: ``kind`` is train, finetune or evaluate; ``options`` e.g. ``{"steps": 300}``."""

    kind: str
    options: dict[str, Any] = Field(default_factory=dict)


class JobOut(ApiModel):
    """A learning job: ``state`` is queued, running, succeeded, failed or cancelled."""

    id: str
    project_id: str
    kind: str
    state: str
    progress: float
    options: dict[str, Any] = Field(default_factory=dict)
    log_tail: str = ""
    result: dict[str, Any] | None = None
    error: str | None = None
    attempts: int = 0
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None

    @property
    def finished(self) -> bool:
        """True once the job is succeeded, failed or cancelled."""
        return self.state in FINISHED_JOB_STATES


class AuditEventOut(ApiModel):
    """One append-only audit event: who did what to which resource, when, from where."""

    id: int
    at: datetime
    actor_name: str
    action: str
    resource_type: str
    resource_id: str | None = None
    project_id: str | None = None
    client_ip: str | None = None
    outcome: str
    detail: dict[str, Any] | None = None


class Page(ApiModel, Generic[T]):
    """A list answer: ``items`` plus the ``total`` when the server knows it."""

    items: list[T]
    total: int | None = None
