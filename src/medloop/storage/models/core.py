"""The core tables: projects, users and their tokens, images, reference pairs, analyses,
corrections, audit.

Ids are 32-character hex strings (``uuid4().hex``), except the audit log's integer
sequence. Every timestamp is timezone-aware UTC (stored naive-UTC on SQLite).
Records are immutable once written except a project's settings and archive date, a
user's role, scope and ``disabled`` flag, a token's last use and revocation, and the
viewer's copies of an image or analysis (set once, derived from immutable bytes); audit
events are append-only. Erasure (:mod:`medloop.storage.models.erasure`) deletes rows.
"""

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
    "OUTCOMES",
    "ROLES",
    "SPLITS",
    "USER_KINDS",
    "Analysis",
    "ApiToken",
    "AuditEvent",
    "Correction",
    "Image",
    "Project",
    "ReferencePair",
    "User",
]

ROLES = ("viewer", "annotator", "admin")
"""User roles, weakest first."""
SPLITS = ("train", "val", "test")
OUTCOMES = ("ok", "denied", "error")
USER_KINDS = ("person", "device")
"""A person signs in to the browser; a device (a scanner, a script, a PACS bridge) calls the API."""


class Project(Base):
    """A segmentation task: its :class:`~medloop.domain.settings.ProjectSettings` as JSON."""

    __tablename__ = "projects"

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    """``ProjectSettings.to_json()``: labels, image kind, learning, acceptance, training."""
    created_at: Mapped[datetime] = created_column()
    dicom: Mapped[dict[str, Any]] = mapped_column(
        JSON, nullable=False, default=dict, server_default=text("'{}'")
    )
    """DICOM settings: ``dicomweb`` (url, auth, poll interval) and ``deidentify`` (on ingest).
    Holds secrets: never sent to non-admins, auth never sent at all."""
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """Set while archived: read-only, left out of the project list, not polled."""


class User(Base):
    """A person or device identity; its API tokens are :class:`ApiToken` rows."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(in_("role", ROLES), name="role"),
        CheckConstraint(in_("kind", USER_KINDS), name="kind"),
    )

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    project_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("projects.id"), nullable=True
    )
    """The one project this user may access; ``None`` means every project."""
    created_at: Mapped[datetime] = created_column()
    disabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    kind: Mapped[str] = mapped_column(
        String(8), nullable=False, default="person", server_default="person"
    )


class ApiToken(Base):
    """One bearer token of a user. Only its sha256 is stored; the secret is shown once."""

    __tablename__ = "api_tokens"
    __table_args__ = (Index("ix_api_tokens_token_hash", "token_hash", unique=True),)

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = created_column()
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """Who issued it (a user's name, or ``cli`` for the server's own command line)."""


class Image(Base):
    """An uploaded image: content-addressed bytes in the blob store plus metadata."""

    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("project_id", "sha256"),)

    id: Mapped[str] = id_column()
    project_id: Mapped[str] = project_fk()
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
    created_at: Mapped[datetime] = created_column()
    created_by: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("users.id"), nullable=True
    )
    frames: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")
    """How many frames the image holds (multi-frame DICOM); every other image has 1."""
    headers_blob_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    """A volume assembled from DICOM: its source instances' headers without pixel data
    (a zip of DICOM files, :mod:`medloop.dicom.series_headers`); ``None`` otherwise."""
    headers_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    viewer_blob_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    """A single-channel volume's voxels as the browser's viewer fetches them (one gzip
    stream, :mod:`medloop.services.voxels`), prepared when it was first analysed (or
    first opened); ``None`` for 2D images and until then."""
    viewer_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    viewer_header: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """That stream's :class:`~medloop.domain.viewer.VoxelHeader` (shape, spacing, voxel
    type, window, affine) as JSON."""


class ReferencePair(Base):
    """A reference image with its ground-truth mask, in a train/val/test split."""

    __tablename__ = "reference_pairs"
    __table_args__ = (
        UniqueConstraint("project_id", "image_id"),
        CheckConstraint(in_("split", SPLITS), name="split"),
    )

    id: Mapped[str] = id_column()
    project_id: Mapped[str] = project_fk()
    image_id: Mapped[str] = mapped_column(String(32), ForeignKey("images.id"), nullable=False)
    mask_blob_key: Mapped[str] = mapped_column(String(255), nullable=False)
    mask_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    split: Mapped[str] = mapped_column(String(8), nullable=False)
    created_at: Mapped[datetime] = created_column()
    group_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """A free reporting group (a stain, a site); ``group`` in records and the API."""


class Analysis(Base):
    """Model version V's result on image I: label map blob, measurements, uncertainty."""

    __tablename__ = "analyses"
    __table_args__ = (
        Index("ix_analyses_project_id_created_at", "project_id", "created_at"),
        Index("ix_analyses_image_id", "image_id"),
    )

    id: Mapped[str] = id_column()
    project_id: Mapped[str] = project_fk()
    image_id: Mapped[str] = mapped_column(String(32), ForeignKey("images.id"), nullable=False)
    model_version: Mapped[str] = mapped_column(String(64), nullable=False)
    label_blob_key: Mapped[str] = mapped_column(String(255), nullable=False)
    label_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    uncertainty: Mapped[float] = mapped_column(Float, nullable=False)
    measurements: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = created_column()
    created_by: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("users.id"), nullable=True
    )
    frame: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    """Which frame of the image was analysed (0 for single-frame images)."""
    viewer_blob_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    """A volume's label map as the browser's viewer fetches it (gzip'd uint8 voxels on
    the image's viewer grid), prepared with the analysis (or when first opened)."""
    viewer_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Correction(Base):
    """A clinician's mask for an analysis; immutable, numbered per project from 0 (``seq``)."""

    __tablename__ = "corrections"
    __table_args__ = (
        UniqueConstraint("project_id", "seq"),
        Index("ix_corrections_analysis_id", "analysis_id"),
    )

    id: Mapped[str] = id_column()
    project_id: Mapped[str] = project_fk()
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
    effort: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """Clicks, brush strokes and active seconds the client reported (``None``: not reported)."""
    created_at: Mapped[datetime] = created_column()


class AuditEvent(Base):
    """Who did what to which resource, when, from where, with what outcome. Append-only.

    Actor and project are plain values, not foreign keys: the log outlives what it names.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint(in_("outcome", OUTCOMES), name="outcome"),
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
