"""Jobs as plain data: kinds, states, a job's typed options and its record.

A job is a durable state machine::

    queued ──claim──▶ running ──succeed──▶ succeeded
      │                 │  ├────fail─────▶ failed
      │ cancel          │  └─cancel + acknowledge_cancel─▶ cancelled
      ▼                 │
    cancelled           └─recover (crash)─▶ queued (attempts < 3) or failed ("interrupted")

Each kind has its own options model; :data:`JobSpec` is their union, discriminated by
``kind``. The API validates a request against it (bad options answer 422 before
anything is queued), the queue stores ``spec.options`` as JSON, and the worker reads
them back with :func:`parse_job_spec`::

    spec = parse_job_spec("finetune", {"steps": 50})
    spec.options.steps   # 50
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError

from medloop.domain.base import SettingsModel, validation_message
from medloop.domain.settings import (
    BatchSize,
    Budget,
    Channels,
    Color,
    CorrectionWeight,
    FlipAxes,
    LearningPolicy,
    LearningRate,
    PatchSize,
    ReplaySize,
    Scale,
    Seed,
    Spacing,
    Steps,
    TrainingOptions,
    ValEvery,
)
from medloop.errors import ConfigError

__all__ = [
    "FINISHED_STATES",
    "JOB_KINDS",
    "JOB_STATES",
    "LEARNING_KINDS",
    "AnyJob",
    "CurvePoint",
    "DicomwebSyncJob",
    "DicomwebSyncOptions",
    "ErasureJob",
    "ErasureOptions",
    "EvaluateJob",
    "EvaluateOptions",
    "FinetuneJob",
    "FinetuneOptions",
    "JobRecord",
    "JobSpec",
    "ReferenceImportJob",
    "ReferenceImportOptions",
    "TrainJob",
    "TrainOverrides",
    "UserJobSpec",
    "parse_job_spec",
]

JOB_KINDS = ("train", "finetune", "evaluate", "dicomweb_sync", "reference_import", "erasure")
LEARNING_KINDS = ("train", "finetune")
"""Job kinds that change a project's model: at most one runs per project at a time."""
JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED_STATES = ("succeeded", "failed", "cancelled")


class TrainOverrides(SettingsModel):
    """A train job's changes to the project's :class:`~medloop.domain.settings.TrainingOptions`.

    Left out (``None``): the project's setting. The merged options are validated
    again (e.g. the patch size against the network depth) before the job is queued.
    """

    budget_s: Budget | None = None
    steps: Steps | None = None
    patch_size: PatchSize | None = None
    spacing: Spacing | None = None
    scale: Scale | None = None
    channels: Channels | None = None
    batch_size: BatchSize | None = None
    lr: LearningRate | None = None
    val_every: ValEvery | None = None
    flip_axes: FlipAxes | None = None
    color: Color | None = None
    seed: Seed | None = None
    interactive: bool | None = None

    def apply(self, base: TrainingOptions) -> TrainingOptions:
        """``base`` with these overrides, validated together (``ConfigError`` if they clash)."""
        return TrainingOptions.parse({**base.model_dump(), **self.model_dump(exclude_none=True)})


class FinetuneOptions(SettingsModel):
    """A fine-tune job's changes to the project's learning policy, and why it runs."""

    steps: Steps | None = None
    budget_s: Budget | None = None
    lr: LearningRate | None = None
    correction_weight: CorrectionWeight | None = None
    replay_size: ReplaySize | None = None
    trigger: Literal["manual", "corrections"] = "manual"
    corrections: int | None = Field(default=None, ge=0)
    """How many corrections the project had when an automatic fine-tune was queued."""

    def apply(self, base: LearningPolicy) -> LearningPolicy:
        """``base`` with these overrides."""
        changes = self.model_dump(exclude_none=True, exclude={"trigger", "corrections"})
        return LearningPolicy.parse({**base.model_dump(), **changes})


class EvaluateOptions(SettingsModel):
    """Which version to score (default: production) on which reference split."""

    version: str | None = Field(default=None, pattern=r"^v\d{4,}$")
    split: Literal["train", "val", "test"] | None = None
    """Default: ``test`` when the project has test pairs, else ``val``."""


class DicomwebSyncOptions(SettingsModel):
    """Why a DICOMweb sync runs."""

    trigger: Literal["manual", "poll"] = "manual"


class ReferenceImportOptions(SettingsModel):
    """A zip of reference pairs to import: where the archive is, and defaults for its pairs.

    The archive is a blob the server stored when it was uploaded (``archive`` is its
    sha256); it is removed when the import ends.
    """

    archive: str = Field(pattern=r"^[0-9a-f]{64}$")
    filename: str = Field(default="upload.zip", max_length=255)
    split: Literal["auto", "train", "val", "test"] = "auto"
    """Split of pairs the archive gives none: ``auto`` puts every 10th (by key hash) in val."""
    group: str | None = Field(default=None, max_length=64)
    """Group of pairs the archive gives none."""


class ErasureOptions(SettingsModel):
    """Which erasure to carry out (its scope, value and reason are in its own record)."""

    erasure: str = Field(pattern=r"^[0-9a-f]{32}$")


class TrainJob(SettingsModel):
    kind: Literal["train"] = "train"
    options: TrainOverrides = Field(default_factory=TrainOverrides)


class FinetuneJob(SettingsModel):
    kind: Literal["finetune"] = "finetune"
    options: FinetuneOptions = Field(default_factory=FinetuneOptions)


class EvaluateJob(SettingsModel):
    kind: Literal["evaluate"] = "evaluate"
    options: EvaluateOptions = Field(default_factory=EvaluateOptions)


class DicomwebSyncJob(SettingsModel):
    kind: Literal["dicomweb_sync"] = "dicomweb_sync"
    options: DicomwebSyncOptions = Field(default_factory=DicomwebSyncOptions)


class ReferenceImportJob(SettingsModel):
    kind: Literal["reference_import"] = "reference_import"
    options: ReferenceImportOptions


class ErasureJob(SettingsModel):
    kind: Literal["erasure"] = "erasure"
    options: ErasureOptions


AnyJob = TrainJob | FinetuneJob | EvaluateJob | DicomwebSyncJob | ReferenceImportJob | ErasureJob

JobSpec = Annotated[AnyJob, Field(discriminator="kind")]
"""A job to run: its ``kind`` and that kind's typed ``options``."""

UserJobSpec = Annotated[
    TrainJob | FinetuneJob | EvaluateJob | DicomwebSyncJob, Field(discriminator="kind")
]
"""The jobs a user queues with ``POST .../jobs``; imports and erasures have routes of their own
(they need an upload, or a record written first)."""

_SPEC: TypeAdapter[AnyJob] = TypeAdapter(JobSpec)


def parse_job_spec(kind: str, options: dict[str, Any] | None) -> AnyJob:
    """The typed spec of a job of ``kind`` with stored ``options``.

    Raises:
        ConfigError: an unknown kind or invalid options, naming the field.
    """
    try:
        return _SPEC.validate_python({"kind": kind, "options": options or {}})
    except ValidationError as err:
        raise ConfigError(f"{kind} job options: {validation_message(err)}") from err


@dataclass(frozen=True)
class CurvePoint:
    """One point of a learning job's live curve: ``loss`` or ``val_dice`` at optimiser ``step``."""

    step: int
    metric: str
    value: float


@dataclass(frozen=True)
class JobRecord:
    """A snapshot of one job, detached from any database session."""

    id: str
    project_id: str
    kind: str
    state: str
    options: dict[str, Any] = field(default_factory=dict)
    progress: float = 0.0
    log_tail: str = ""
    result: dict[str, Any] | None = None
    error: str | None = None
    attempts: int = 0
    cancel_requested: bool = False
    heartbeat_at: datetime | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    created_by: str | None = None

    @property
    def finished(self) -> bool:
        """Whether the job reached a final state (succeeded, failed or cancelled)."""
        return self.state in FINISHED_STATES

    @property
    def is_learning(self) -> bool:
        """Whether the job trains a model (at most one per project runs at a time)."""
        return self.kind in LEARNING_KINDS

    @property
    def spec(self) -> AnyJob:
        """The job's typed options (raises ``ConfigError`` if the stored ones are invalid)."""
        return parse_job_spec(self.kind, self.options)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (timestamps as ISO 8601 strings)."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out
