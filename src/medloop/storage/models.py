"""The database tables (SQLAlchemy 2.0 declarative). Alembic migrations create them.

Ids are 32-character hex strings (``uuid4().hex``), except the audit log's integer
sequence. Every timestamp is timezone-aware UTC (stored naive-UTC on SQLite).
Records are immutable once written except jobs (a state machine) and a user's
``disabled`` flag; audit events are append-only.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "DICOM_INSTANCE_KINDS",
    "DICOM_INSTANCE_STATES",
    "FINISHED_STATES",
    "JOB_KINDS",
    "JOB_STATES",
    "LEARNING_KINDS",
    "OUTCOMES",
    "ROLES",
    "SPLITS",
    "Analysis",
    "AuditEvent",
    "Base",
    "Correction",
    "DicomInstance",
    "Image",
    "Job",
    "Project",
    "Pseudonym",
    "ReferencePair",
    "UTCDateTime",
    "User",
    "new_id",
    "utcnow",
]

ROLES = ("viewer", "annotator", "admin")
"""User roles, weakest first."""
SPLITS = ("train", "val", "test")
JOB_KINDS = ("train", "finetune", "evaluate", "dicomweb_sync")
LEARNING_KINDS = ("train", "finetune")
"""Job kinds that change a project's model: at most one runs per project."""
JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED_STATES = ("succeeded", "failed", "cancelled")
OUTCOMES = ("ok", "denied", "error")
DICOM_INSTANCE_KINDS = ("source", "seg_out", "seg_in", "other")
"""What a PACS instance is to medloop: an image to analyse, a SEG it wrote, a SEG to read."""
DICOM_INSTANCE_STATES = ("pending", "analysed", "done", "failed", "skipped")
"""``pending`` → ``analysed`` (results kept, SEG not yet stored back) → ``done``."""

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> str:
    """A new random id: 32 hex characters."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the database.

    Naive datetimes are refused on write, so local times never slip in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (stable names for migrations)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _id() -> Mapped[str]:
    return mapped_column(String(32), primary_key=True, default=new_id)


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), nullable=False, default=utcnow)


def _project_fk(index: bool = False) -> Mapped[str]:
    return mapped_column(String(32), ForeignKey("projects.id"), nullable=False, index=index)


class Project(Base):
    """A segmentation task: labels (``[{value, name, color}]``), image kind, learning settings."""

    __tablename__ = "projects"

    id: Mapped[str] = _id()
    name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    labels: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    image_kind: Mapped[str] = mapped_column(String(50), nullable=False)
    learning: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = _created()
    dicom: Mapped[dict[str, Any]] = mapped_column(
        JSON, nullable=False, default=dict, server_default=text("'{}'")
    )
    """DICOM settings: ``dicomweb`` (url, auth, poll interval) and ``deidentify`` (on ingest).
    Holds secrets: never sent to non-admins, auth never sent at all."""


class User(Base):
    """A person or device identity. Only the sha256 of its API token is stored."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(_in("role", ROLES), name="role"),
        Index("ix_users_token_hash", "token_hash", unique=True),
    )

    id: Mapped[str] = _id()
    name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    project_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("projects.id"), nullable=True
    )
    """The one project this user may access; ``None`` means every project."""
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = _created()
    disabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class Image(Base):
    """An uploaded image: content-addressed bytes in the blob store plus metadata."""

    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("project_id", "sha256"),)

    id: Mapped[str] = _id()
    project_id: Mapped[str] = _project_fk()
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    blob_key: Mapped[str] = mapped_column(String(255), nullable=False)
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    content_type: Mapped[str] = mapped_column(String(100), nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    channels: Mapped[int] = mapped_column(Integer, nullable=False)
    spacing_row_mm: Mapped[float | None] = mapped_column(Float, nullable=True)
    spacing_col_mm: Mapped[float | None] = mapped_column(Float, nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = _created()
    created_by: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("users.id"), nullable=True
    )
    frames: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")
    """How many frames the image holds (multi-frame DICOM); every other image has 1."""


class ReferencePair(Base):
    """A reference image with its ground-truth mask, in a train/val/test split."""

    __tablename__ = "reference_pairs"
    __table_args__ = (
        UniqueConstraint("project_id", "image_id"),
        CheckConstraint(_in("split", SPLITS), name="split"),
    )

    id: Mapped[str] = _id()
    project_id: Mapped[str] = _project_fk()
    image_id: Mapped[str] = mapped_column(String(32), ForeignKey("images.id"), nullable=False)
    mask_blob_key: Mapped[str] = mapped_column(String(255), nullable=False)
    mask_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    split: Mapped[str] = mapped_column(String(8), nullable=False)
    created_at: Mapped[datetime] = _created()


class Analysis(Base):
    """Model version V's result on image I: label map blob, measurements, uncertainty."""

    __tablename__ = "analyses"
    __table_args__ = (
        Index("ix_analyses_project_id_created_at", "project_id", "created_at"),
        Index("ix_analyses_image_id", "image_id"),
    )

    id: Mapped[str] = _id()
    project_id: Mapped[str] = _project_fk()
    image_id: Mapped[str] = mapped_column(String(32), ForeignKey("images.id"), nullable=False)
    model_version: Mapped[str] = mapped_column(String(64), nullable=False)
    label_blob_key: Mapped[str] = mapped_column(String(255), nullable=False)
    label_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    uncertainty: Mapped[float] = mapped_column(Float, nullable=False)
    measurements: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = _created()
    created_by: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("users.id"), nullable=True
    )
    frame: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    """Which frame of the image was analysed (0 for single-frame images)."""


class Correction(Base):
    """A clinician's mask for an analysis; immutable, numbered per project from 0 (``seq``)."""

    __tablename__ = "corrections"
    __table_args__ = (
        UniqueConstraint("project_id", "seq"),
        Index("ix_corrections_analysis_id", "analysis_id"),
    )

    id: Mapped[str] = _id()
    project_id: Mapped[str] = _project_fk()
    analysis_id: Mapped[str] = mapped_column(String(32), ForeignKey("analyses.id"), nullable=False)
    image_id: Mapped[str] = mapped_column(String(32), ForeignKey("images.id"), nullable=False)
    mask_blob_key: Mapped[str] = mapped_column(String(255), nullable=False)
    mask_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    held_out: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    author_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("users.id"), nullable=True)
    """The user who corrected; ``None`` only for corrections imported by the system."""
    model_version: Mapped[str] = mapped_column(String(64), nullable=False)
    dice_vs_prediction: Mapped[float] = mapped_column(Float, nullable=False)
    created_at: Mapped[datetime] = _created()


class Job(Base):
    """A durable job (train, fine-tune, evaluate): a state machine with progress and heartbeat."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(_in("kind", JOB_KINDS), name="kind"),
        CheckConstraint(_in("state", JOB_STATES), name="state"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress"),
        Index("ix_jobs_state_created_at", "state", "created_at"),
        Index("ix_jobs_project_id_created_at", "project_id", "created_at"),
        # The database itself keeps "one learning job per project at a time".
        Index(
            "ux_jobs_one_learning_job",
            "project_id",
            unique=True,
            sqlite_where=text(f"state = 'running' AND {_in('kind', LEARNING_KINDS)}"),
            postgresql_where=text(f"state = 'running' AND {_in('kind', LEARNING_KINDS)}"),
        ),
    )

    id: Mapped[str] = _id()
    project_id: Mapped[str] = _project_fk()
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    options: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    progress: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    log_tail: Mapped[str] = mapped_column(Text, nullable=False, default="")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = _created()
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_by: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("users.id"), nullable=True
    )


class AuditEvent(Base):
    """Who did what to which resource, when, from where, with what outcome. Append-only.

    Actor and project are plain values, not foreign keys: the log outlives what it names.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint(_in("outcome", OUTCOMES), name="outcome"),
        Index("ix_audit_events_project_id_id", "project_id", "id"),
        Index("ix_audit_events_at", "at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    actor_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    actor_name: Mapped[str] = mapped_column(String(200), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    resource_type: Mapped[str] = mapped_column(String(32), nullable=False)
    resource_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    project_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    client_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str] = mapped_column(String(8), nullable=False)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class DicomInstance(Base):
    """One instance seen on a project's DICOMweb server: the sync's memory.

    Its SOP Instance UID is unique per project, so nothing is fetched twice; ``state``,
    ``attempts`` and ``next_attempt_at`` carry retries with backoff across PACS outages
    and restarts. ``detail`` keeps what a retry needs (the analyses, the SEG's UID).
    """

    __tablename__ = "dicom_instances"
    __table_args__ = (
        UniqueConstraint("project_id", "sop_instance_uid"),
        CheckConstraint(_in("kind", DICOM_INSTANCE_KINDS), name="kind"),
        CheckConstraint(_in("state", DICOM_INSTANCE_STATES), name="state"),
        Index("ix_dicom_instances_project_id_state", "project_id", "state"),
    )

    id: Mapped[str] = _id()
    project_id: Mapped[str] = _project_fk()
    sop_instance_uid: Mapped[str] = mapped_column(String(64), nullable=False)
    study_instance_uid: Mapped[str] = mapped_column(String(64), nullable=False)
    series_instance_uid: Mapped[str] = mapped_column(String(64), nullable=False)
    sop_class_uid: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    image_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("images.id"), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class Pseudonym(Base):
    """De-identification on ingest: an original identifier and the pseudonym that replaced it.

    Kept apart from the images (which hold only pseudonyms); only admins may read it.
    """

    __tablename__ = "pseudonyms"
    __table_args__ = (UniqueConstraint("project_id", "kind", "original"),)

    id: Mapped[str] = _id()
    project_id: Mapped[str] = _project_fk()
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    """``uid``, ``patient_id`` or ``patient_name``."""
    original: Mapped[str] = mapped_column(String(255), nullable=False)
    pseudonym: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = _created()
