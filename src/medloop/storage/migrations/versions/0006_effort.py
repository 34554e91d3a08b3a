"""The effort a correction cost: ``corrections.effort`` (JSON, nullable).

Clicks, brush strokes and seconds of active editing as the client reported them with
the correction (``{"clicks": 3, "brush_strokes": 1, "active_seconds": 42.5}``);
``NULL`` for corrections made before, or sent without them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``corrections.effort``."""
    op.add_column("corrections", sa.Column("effort", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop ``corrections.effort`` (the effort records are lost), in place: SQLite's batch
    mode would rebuild the table, which fails the foreign keys that point to it."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE corrections DROP COLUMN effort")
    else:
        op.drop_column("corrections", "effort")
