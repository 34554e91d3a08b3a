"""Model versions of the server: their rows, files (blobs), events and training checkpoints.

A version's content (manifest, lineage, metrics, files) is written once; only its
``status`` changes, and only together with an append-only :class:`ModelEvent`, in one
transaction that holds the project row's lock. The files' bytes are immutable blobs
in the blob store (``model_files.blob_key``), checked against their sha256 on read.
A partial unique index keeps at most one production version per project.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from medloop.storage.models.base import (
    Base,
    UTCDateTime,
    created_column,
    id_column,
    in_,
    project_fk,
    utcnow,
)

__all__ = [
    "MODEL_EVENTS",
    "VERSION_STATUSES",
    "ModelEvent",
    "ModelFile",
    "ModelVersion",
    "TrainingCheckpoint",
]

VERSION_STATUSES = ("candidate", "production", "rejected", "retired")
MODEL_EVENTS = ("created", "promoted", "rejected", "rolled_back")


class ModelVersion(Base):
    """One model version of a project: ``v0001``, ``v0002``, ... (``number`` 1, 2, ...)."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("project_id", "name"),
        UniqueConstraint("project_id", "number"),
        CheckConstraint(in_("status", VERSION_STATUSES), name="status"),
        Index(
            "ux_model_versions_one_production",
            "project_id",
            unique=True,
            sqlite_where=text("status = 'production'"),
            postgresql_where=text("status = 'production'"),
        ),
    )

    id: Mapped[str] = id_column()
    project_id: Mapped[str] = project_fk()
    name: Mapped[str] = mapped_column(String(16), nullable=False)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    parent: Mapped[str | None] = mapped_column(String(16), nullable=True)
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    lineage: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """The gate's verdict, written once (``None`` until the gate ran)."""
    created_at: Mapped[datetime] = created_column()


class ModelFile(Base):
    """One file of a version (``weights.pt``, ...): a blob, pinned by its sha256."""

    __tablename__ = "model_files"
    __table_args__ = (UniqueConstraint("version_id", "name"),)

    id: Mapped[str] = id_column()
    version_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("model_versions.id"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    blob_key: Mapped[str] = mapped_column(String(255), nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)


class ModelEvent(Base):
    """Append-only history of a project's versions: created, promoted, rejected, rolled back.

    ``version`` is the version the event is about (for ``promoted`` and
    ``rolled_back``: the one now in production); ``previous`` the production version
    it replaced. The ``promoted`` and ``rolled_back`` events, in order, are the
    production history a rollback walks back through.
    """

    __tablename__ = "model_events"
    __table_args__ = (
        CheckConstraint(in_("event", MODEL_EVENTS), name="event"),
        Index("ix_model_events_project_id_id", "project_id", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    project_id: Mapped[str] = project_fk()
    version: Mapped[str] = mapped_column(String(16), nullable=False)
    event: Mapped[str] = mapped_column(String(16), nullable=False)
    previous: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    actor: Mapped[str | None] = mapped_column(String(200), nullable=True)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class TrainingCheckpoint(Base):
    """The latest checkpoint of one resumable training run (``run_key``), as a blob."""

    __tablename__ = "training_checkpoints"
    __table_args__ = (UniqueConstraint("project_id", "run_key"),)

    id: Mapped[str] = id_column()
    project_id: Mapped[str] = project_fk()
    run_key: Mapped[str] = mapped_column(String(200), nullable=False)
    blob_key: Mapped[str] = mapped_column(String(255), nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
