"""Frames: ``images.frames`` (how many a multi-frame DICOM holds), ``analyses.frame``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-02-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the two columns; existing rows are single-frame images and their frame 0."""
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("frames", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("analyses") as batch:
        batch.add_column(sa.Column("frame", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    """Drop the two columns."""
    with op.batch_alter_table("analyses") as batch:
        batch.drop_column("frame")
    with op.batch_alter_table("images") as batch:
        batch.drop_column("frames")
