"""The viewer's prepared copies: ``images.viewer_blob_key``, ``images.viewer_sha256``,
``images.viewer_header`` (JSON) and ``analyses.viewer_blob_key``,
``analyses.viewer_sha256`` (all nullable).

A volume's voxels, and an analysis's label volume, as the browser's viewer fetches them
(one gzip stream each, :mod:`medloop.services.voxels`), made once when the volume is
analysed instead of at every first open; the image keeps the stream's header (shape,
spacing, voxel type, window, affine) beside it. ``NULL`` for 2D images and for
volumes analysed before: the viewer decodes those on their first open and stores the
copy then.

Columns rather than a table of their own: each copy derives from one row's immutable
bytes and lives exactly as long as that row (an erasure deletes the row, and with it the
reference), as the source headers of 0007 do.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS: tuple[tuple[str, str, sa.types.TypeEngine[Any]], ...] = (
    ("images", "viewer_blob_key", sa.String(255)),
    ("images", "viewer_sha256", sa.String(64)),
    ("images", "viewer_header", sa.JSON()),
    ("analyses", "viewer_blob_key", sa.String(255)),
    ("analyses", "viewer_sha256", sa.String(64)),
)


def upgrade() -> None:
    """Add the five columns."""
    for table, name, kind in _COLUMNS:
        op.add_column(table, sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    """Drop the five columns (the copies' blobs are left for the orphan sweep), in place:
    SQLite's batch mode would rebuild the tables, which fails the foreign keys that point
    to them."""
    for table, name, _ in reversed(_COLUMNS):
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE {table} DROP COLUMN {name}")
        else:
            op.drop_column(table, name)
