"""DICOM tables: the DICOMweb sync ledger and the de-identification pseudonym map."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
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

__all__ = ["DICOM_INSTANCE_KINDS", "DICOM_INSTANCE_STATES", "DicomInstance", "Pseudonym"]

DICOM_INSTANCE_KINDS = ("source", "seg_out", "seg_in", "other")
"""What a PACS instance is to medloop: an image to analyse, a SEG it wrote, a SEG to read."""
DICOM_INSTANCE_STATES = ("pending", "analysed", "done", "failed", "skipped")
"""``pending`` → ``analysed`` (results kept, SEG not yet stored back) → ``done``."""


class DicomInstance(Base):
    """One instance seen on a project's DICOMweb server: the sync's memory.

    Its SOP Instance UID is unique per project, so nothing is fetched twice; ``state``,
    ``attempts`` and ``next_attempt_at`` carry retries with backoff across PACS outages
    and restarts. ``detail`` keeps what a retry needs (the analyses, the SEG's UID).
    """

    __tablename__ = "dicom_instances"
    __table_args__ = (
        UniqueConstraint("project_id", "sop_instance_uid"),
        CheckConstraint(in_("kind", DICOM_INSTANCE_KINDS), name="kind"),
        CheckConstraint(in_("state", DICOM_INSTANCE_STATES), name="state"),
        Index("ix_dicom_instances_project_id_state", "project_id", "state"),
    )

    id: Mapped[str] = id_column()
    project_id: Mapped[str] = project_fk()
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
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class Pseudonym(Base):
    """De-identification on ingest: an original identifier and the pseudonym that replaced it.

    Kept apart from the images (which hold only pseudonyms); only admins may read it.
    """

    __tablename__ = "pseudonyms"
    __table_args__ = (UniqueConstraint("project_id", "kind", "original"),)

    id: Mapped[str] = id_column()
    project_id: Mapped[str] = project_fk()
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    """``uid``, ``patient_id`` or ``patient_name``."""
    original: Mapped[str] = mapped_column(String(255), nullable=False)
    pseudonym: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = created_column()
