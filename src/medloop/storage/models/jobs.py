"""The jobs table (durable train, fine-tune, evaluate, DICOMweb sync, import and erasure jobs)
and the training curves the learning jobs report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from medloop.domain.jobs import JOB_KINDS, JOB_STATES, LEARNING_KINDS
from medloop.storage.models.base import (
    Base,
    UTCDateTime,
    created_column,
    id_column,
    in_,
    project_fk,
    utcnow,
)

__all__ = ["CURVE_METRICS", "Job", "JobCurvePoint"]

CURVE_METRICS = ("loss", "val_dice")


class Job(Base):
    """A durable job (train, fine-tune, evaluate): a state machine with progress and heartbeat."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(in_("kind", JOB_KINDS), name="kind"),
        CheckConstraint(in_("state", JOB_STATES), name="state"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress"),
        Index("ix_jobs_state_created_at", "state", "created_at"),
        Index("ix_jobs_project_id_created_at", "project_id", "created_at"),
        # The database itself keeps "one learning job per project at a time".
        Index(
            "ux_jobs_one_learning_job",
            "project_id",
            unique=True,
            sqlite_where=text(f"state = 'running' AND {in_('kind', LEARNING_KINDS)}"),
            postgresql_where=text(f"state = 'running' AND {in_('kind', LEARNING_KINDS)}"),
        ),
    )

    id: Mapped[str] = id_column()
    project_id: Mapped[str] = project_fk()
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
    created_at: Mapped[datetime] = created_column()
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_by: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("users.id"), nullable=True
    )


class JobCurvePoint(Base):
    """One point of a learning job's curve: the training loss or the validation Dice at a step.

    Written by the job's handler a few at a time while it runs (the queue's own rows
    are left to the queue); read by the browser to draw the live curve.
    """

    __tablename__ = "job_curve_points"
    __table_args__ = (
        CheckConstraint(in_("metric", CURVE_METRICS), name="metric"),
        Index("ix_job_curve_points_job_id_id", "job_id", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[str] = mapped_column(String(32), ForeignKey("jobs.id"), nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    step: Mapped[int] = mapped_column(Integer, nullable=False)
    metric: Mapped[str] = mapped_column(String(16), nullable=False)
    value: Mapped[float] = mapped_column(Float, nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
