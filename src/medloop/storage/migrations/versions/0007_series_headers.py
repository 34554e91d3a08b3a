"""The source headers of a volume assembled from DICOM: ``images.headers_blob_key`` and
``images.headers_sha256`` (both nullable).

A DICOM series (or an enhanced multi-frame image) stored as a volume keeps its
instances' headers without pixel data in one blob, so a DICOM SEG of the volume can
reference every source instance; ``NULL`` for every other image and for volumes
stored before.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (("headers_blob_key", 255), ("headers_sha256", 64))


def upgrade() -> None:
    """Add the two columns."""
    for name, length in _COLUMNS:
        op.add_column("images", sa.Column(name, sa.String(length), nullable=True))


def downgrade() -> None:
    """Drop the two columns (the headers' blobs are left for the orphan sweep), in place:
    SQLite's batch mode would rebuild the table, which fails the foreign keys that point
    to it."""
    for name, _ in reversed(_COLUMNS):
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE images DROP COLUMN {name}")
        else:
            op.drop_column("images", name)
