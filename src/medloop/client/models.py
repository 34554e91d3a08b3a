"""The JSON shapes of the medloop HTTP API (``/api/v1``), as the client sees them.

These mirror ``medloop.api.schemas`` without importing it (the client must stay light: no
torch, numpy, FastAPI or SQLAlchemy). Answers are parsed leniently: fields the server adds
later are ignored (``extra="ignore"``), so an older client keeps working against a newer
server. Input models (:class:`Label`, :class:`Learning`, :class:`ProjectIn`, :class:`JobIn`)
carry no value limits and no defaults of their own: what is left out is not sent, the
server fills it in, checks everything and answers ``422`` →
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
    "AgreementOut",
    "AnalysisOut",
    "AnalyzeRequest",
    "ApiModel",
    "AuditEventOut",
    "CorrectionOut",
    "EffortOut",
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
    "LearningPolicy",
    "Me",
    "MeasurementOut",
    "ModelVersionOut",
    "Page",
    "ProjectIn",
    "ProjectOut",
    "ReferenceOut",
    "ReviewItemOut",
    "Training",
    "TrainingOptions",
]

JobKind = Literal["train", "finetune", "evaluate", "dicomweb_sync", "reference_import", "erasure"]
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
    """The promotion gate: a candidate must be shown (paired per-image differences, one-sided
    ``confidence``) to be no worse than production by more than ``margin`` Dice.

    Left out (``None``): the server's default.
    """

    margin: float | None = None
    confidence: float | None = None


class Learning(ApiModel):
    """How a fine-tune learns from corrections; left out (``None``): the server's default.

    ``correction_weight`` is *w*, a correction's pull relative to a reference pair;
    ``strategy`` is ``weighted-replay``, ``corrections-only``, ``all-equal`` or ``retrain``.
    """

    correction_weight: float | None = None
    replay_size: int | None = None
    steps: int | None = None
    budget_s: float | None = None
    lr: float | None = None
    batch_size: int | None = None
    held_out_share: float | None = None
    strategy: str | None = None
    seed: int | None = None
    distillation: float | None = None
    l2sp: float | None = None
    ema: float | None = None
    encoder_lr_scale: float | None = None
    lookalike_share: float | None = None
    lookalike_weight: float | None = None


class Training(ApiModel):
    """How a version is trained from scratch: a time budget and whatever you force.

    Left out (``None``): the server plans it from the data and the budget.
    ``patch_size`` and ``spacing`` have one value per spatial axis (one side: a square
    or a cube).
    """

    budget_s: float | None = None
    steps: int | None = None
    patch_size: list[int] | None = None
    spacing: list[float] | None = None
    scale: float | None = None
    channels: list[int] | None = None
    batch_size: int | None = None
    lr: float | None = None
    val_every: int | None = None
    flip_axes: list[int] | None = None
    color: str | None = None
    seed: int | None = None


# The server-side names, for readers comparing with ``medloop.domain.settings``.
LabelIn = Label
AcceptanceRuleIn = AcceptanceRule
LearningIn = Learning
LearningPolicy = Learning
TrainingOptions = Training


class ProjectIn(ApiModel):
    """``POST /api/v1/projects`` body: a name, labels, and only the settings you set.

    Settings left out (``None``) are not sent: the server's defaults apply.
    ``finetune_every`` is the number of new corrections per automatic fine-tune (0 = never);
    ``max_frames`` the frames or slices one upload may bring (each is one analysis).
    """

    name: str
    labels: list[Label]
    image_kind: str | None = None
    spatial_dims: int | None = None
    learning: Learning | None = None
    acceptance: AcceptanceRule | None = None
    training: Training | None = None
    finetune_every: int | None = None
    max_frames: int | None = None

    def body(self) -> dict[str, Any]:
        """The JSON to send: only what was set."""
        return self.model_dump(exclude_none=True)


class ProjectOut(ApiModel):
    """A project (a segmentation task), its settings and its production model version."""

    id: str
    name: str
    labels: list[Label]
    image_kind: str
    learning: Learning = Field(default_factory=Learning)
    acceptance: AcceptanceRule = Field(default_factory=AcceptanceRule)
    training: Training = Field(default_factory=Training)
    finetune_every: int | None = None
    max_frames: int | None = None
    spatial_dims: int | None = None
    production_version: str | None = None
    created_at: datetime
    archived_at: datetime | None = None


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
    """A reference image + mask pair (training data), its split and group."""

    id: str
    image_id: str
    split: str
    group: str | None = None
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
    volume_mm3: float | None = None
    """A volume's class size in mm³ (``area_px`` then counts voxels)."""
    largest_component_mm3: float | None = None


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
    volume: bool = False
    """A volume's analysis: its mask is a NIfTI label volume; see ``analysis_slice``."""


class EffortOut(ApiModel):
    """What a correction cost: as the client reported it, and the server's Dice between
    the model's prediction and the submitted mask."""

    clicks: int | None = None
    brush_strokes: int | None = None
    active_seconds: float | None = None
    dice_vs_prediction: float


class AgreementOut(ApiModel):
    """One class of a new correction against the prediction: Dice, and the pixels (2D) or
    voxels (3D) that entered or left the class."""

    value: int
    name: str
    dice: float
    changed: int


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
    effort: EffortOut | None = None
    """What the correction cost (``None``: sent without an effort record)."""
    agreement: list[AgreementOut] | None = None
    """Per class, in the answer to a submission (``None`` when read back later)."""


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
    erased_data: int = 0
    """How many of the pairs and corrections it saw were erased since (their entries in
    ``lineage`` are marked ``"erased": true``)."""


class JobIn(ApiModel):
    """``POST .../jobs`` body: ``kind`` is train, finetune, evaluate or dicomweb_sync;
    ``options`` e.g. ``{"steps": 300}`` (the server checks them per kind and answers 422)."""

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
