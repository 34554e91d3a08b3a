"""JSON shapes of the HTTP API (``/api/v1``). The client SDK mirrors these; it never imports them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AcceptanceRuleIn",
    "AnalysisOut",
    "AnalyzeRequest",
    "AuditEventOut",
    "CorrectionOut",
    "ErrorOut",
    "ImageOut",
    "JobIn",
    "JobOut",
    "LabelIn",
    "LearningIn",
    "ModelVersionOut",
    "Page",
    "ProjectIn",
    "ProjectOut",
    "ReferenceOut",
    "ReviewItemOut",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(BaseModel):
    """Every 4xx/5xx body: ``{"error": {"code": "...", "message": "..."}}``."""

    error: dict[str, str]


class LabelIn(_Strict):
    value: int = Field(ge=1, le=255)
    name: str = Field(min_length=1, max_length=64)
    color: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")


class AcceptanceRuleIn(_Strict):
    max_class_dice_drop: float = Field(default=0.01, ge=0.0, le=1.0)
    min_heldout_gain: float = Field(default=0.0, ge=-1.0, le=1.0)


class LearningIn(_Strict):
    """Per-project learning settings; ``finetune_every`` = new corrections per automatic fine-tune (0 = never)."""

    correction_weight: float = Field(default=16.0, gt=0.0, le=1000.0)
    replay_size: int = Field(default=256, ge=0, le=100_000)
    finetune_every: int = Field(default=10, ge=0, le=100_000)
    steps: int = Field(default=300, ge=1, le=1_000_000)
    lr: float = Field(default=3e-4, gt=0.0, le=1.0)
    held_out_share: float = Field(default=0.2, ge=0.0, lt=1.0)
    acceptance: AcceptanceRuleIn = Field(default_factory=AcceptanceRuleIn)
    # training from scratch
    train_steps: int = Field(default=2000, ge=1, le=1_000_000)
    patch_size: int = Field(default=256, ge=16, le=2048)
    channels: list[int] = Field(
        default_factory=lambda: [16, 32, 64, 128, 256], min_length=2, max_length=8
    )
    color: Literal["auto", "gray", "rgb"] = "auto"


class ProjectIn(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    labels: list[LabelIn] = Field(min_length=1, max_length=255)
    image_kind: str = Field(default="microscopy", max_length=64)
    learning: LearningIn = Field(default_factory=LearningIn)


class ProjectOut(BaseModel):
    id: str
    name: str
    labels: list[LabelIn]
    image_kind: str
    learning: LearningIn
    production_version: str | None
    created_at: datetime


class ImageOut(BaseModel):
    id: str
    project_id: str
    sha256: str
    filename: str
    width: int
    height: int
    channels: int
    spacing_mm: list[float] | None
    metadata: dict[str, Any]
    created_at: datetime


class ReferenceOut(BaseModel):
    id: str
    image_id: str
    split: str
    mask_sha256: str


class MeasurementOut(BaseModel):
    value: int
    name: str
    area_px: int
    area_mm2: float | None
    components: int
    largest_component_px: int
    largest_component_mm2: float | None


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


class CorrectionOut(BaseModel):
    id: str
    analysis_id: str
    image_id: str
    model_version: str
    author: str | None
    dice_vs_prediction: float
    held_out: bool
    seq: int
    corrections_until_finetune: int | None
    finetune_job_id: str | None
    created_at: datetime


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
    report: dict[str, Any] | None


class JobIn(_Strict):
    kind: Literal["train", "finetune", "evaluate"]
    options: dict[str, Any] = Field(default_factory=dict)


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


class Page(BaseModel):
    """A list answer: ``items`` plus the ``total`` when known."""

    items: list[Any]
    total: int | None = None
