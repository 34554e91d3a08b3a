"""Erasure: who erased which patient's, study's or image's data, and what went.

The rows of an erased image (the image, its reference pair, analyses, corrections)
are deleted; :class:`ErasedItem` keeps only each one's id and sha256, so the model
versions that trained on them can say so, and the identifier itself is kept only
as a sha256 once the erasure is done.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from medloop.storage.models.base import (
    Base,
    UTCDateTime,
    created_column,
    id_column,
    in_,
    project_fk,
)

__all__ = ["ERASED_KINDS", "ERASURE_SCOPES", "ERASURE_STATES", "ErasedItem", "Erasure"]

ERASURE_SCOPES = ("patient", "study", "image")
ERASURE_STATES = ("queued", "done", "failed")
ERASED_KINDS = ("image", "reference", "analysis", "correction")


class Erasure(Base):
    """One erasure request: its scope, why, who asked, and (when done) what it removed."""

    __tablename__ = "erasures"
    __table_args__ = (
        CheckConstraint(in_("scope", ERASURE_SCOPES), name="scope"),
        CheckConstraint(in_("state", ERASURE_STATES), name="state"),
        Index("ix_erasures_project_id_created_at", "project_id", "created_at"),
    )

    id: Mapped[str] = id_column()
    project_id: Mapped[str] = project_fk()
    scope: Mapped[str] = mapped_column(String(16), nullable=False)
    value_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    pending_value: Mapped[str | None] = mapped_column(String(255), nullable=True)
    """The identifier to erase, kept only until the erasure is done (then ``NULL``)."""
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    actor_name: Mapped[str] = mapped_column(String(200), nullable=False)
    actor_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = created_column()
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ErasedItem(Base):
    """A row an erasure deleted: its kind, id and content hash (nothing else is kept)."""

    __tablename__ = "erased_items"
    __table_args__ = (
        CheckConstraint(in_("kind", ERASED_KINDS), name="kind"),
        Index("ix_erased_items_project_id_item_id", "project_id", "item_id"),
        Index("ix_erased_items_erasure_id", "erasure_id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    erasure_id: Mapped[str] = mapped_column(String(32), ForeignKey("erasures.id"), nullable=False)
    project_id: Mapped[str] = project_fk()
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    item_id: Mapped[str] = mapped_column(String(32), nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    """The image's bytes (kind ``image``), or the label map's (the others)."""
