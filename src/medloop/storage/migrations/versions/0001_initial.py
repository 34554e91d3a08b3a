"""Initial schema: projects, users, images, reference pairs, analyses, corrections, jobs, audit.

Revision ID: 0001
Revises:
Create Date: 2026-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ONE_LEARNING_JOB = "state = 'running' AND kind IN ('train', 'finetune')"


def _id() -> sa.Column[str]:
    return sa.Column("id", sa.String(32), nullable=False)


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _fk(column: str, table: str, owner: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{table}.id"], name=op.f(f"fk_{owner}_{column}_{table}")
    )


def upgrade() -> None:
    """Create every table."""
    op.create_table(
        "projects",
        _id(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("image_kind", sa.String(50), nullable=False),
        sa.Column("learning", sa.JSON(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("name", name=op.f("uq_projects_name")),
    )
    op.create_table(
        "users",
        _id(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        _ts("created_at"),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.CheckConstraint("role IN ('viewer', 'annotator', 'admin')", name=op.f("ck_users_role")),
        _fk("project_id", "projects", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_index("ix_users_token_hash", "users", ["token_hash"], unique=True)
    op.create_table(
        "images",
        _id(),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("blob_key", sa.String(255), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("spacing_row_mm", sa.Float(), nullable=True),
        sa.Column("spacing_col_mm", sa.Float(), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=False),
        _ts("created_at"),
        sa.Column("created_by", sa.String(32), nullable=True),
        _fk("project_id", "projects", "images"),
        _fk("created_by", "users", "images"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
        sa.UniqueConstraint("project_id", "sha256", name=op.f("uq_images_project_id_sha256")),
    )
    op.create_table(
        "reference_pairs",
        _id(),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("image_id", sa.String(32), nullable=False),
        sa.Column("mask_blob_key", sa.String(255), nullable=False),
        sa.Column("mask_sha256", sa.String(64), nullable=False),
        sa.Column("split", sa.String(8), nullable=False),
        _ts("created_at"),
        sa.CheckConstraint(
            "split IN ('train', 'val', 'test')", name=op.f("ck_reference_pairs_split")
        ),
        _fk("project_id", "projects", "reference_pairs"),
        _fk("image_id", "images", "reference_pairs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reference_pairs")),
        sa.UniqueConstraint(
            "project_id", "image_id", name=op.f("uq_reference_pairs_project_id_image_id")
        ),
    )
    op.create_table(
        "analyses",
        _id(),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("image_id", sa.String(32), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("label_blob_key", sa.String(255), nullable=False),
        sa.Column("label_sha256", sa.String(64), nullable=False),
        sa.Column("uncertainty", sa.Float(), nullable=False),
        sa.Column("measurements", sa.JSON(), nullable=False),
        _ts("created_at"),
        sa.Column("created_by", sa.String(32), nullable=True),
        _fk("project_id", "projects", "analyses"),
        _fk("image_id", "images", "analyses"),
        _fk("created_by", "users", "analyses"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analyses")),
    )
    op.create_index("ix_analyses_project_id_created_at", "analyses", ["project_id", "created_at"])
    op.create_index("ix_analyses_image_id", "analyses", ["image_id"])
    op.create_table(
        "corrections",
        _id(),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("analysis_id", sa.String(32), nullable=False),
        sa.Column("image_id", sa.String(32), nullable=False),
        sa.Column("mask_blob_key", sa.String(255), nullable=False),
        sa.Column("mask_sha256", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("held_out", sa.Boolean(), nullable=False),
        sa.Column("author_id", sa.String(32), nullable=True),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("dice_vs_prediction", sa.Float(), nullable=False),
        _ts("created_at"),
        _fk("project_id", "projects", "corrections"),
        _fk("analysis_id", "analyses", "corrections"),
        _fk("image_id", "images", "corrections"),
        _fk("author_id", "users", "corrections"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corrections")),
        sa.UniqueConstraint("project_id", "seq", name=op.f("uq_corrections_project_id_seq")),
    )
    op.create_index("ix_corrections_analysis_id", "corrections", ["analysis_id"])
    op.create_table(
        "jobs",
        _id(),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("log_tail", sa.Text(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        _ts("heartbeat_at", nullable=True),
        _ts("created_at"),
        _ts("started_at", nullable=True),
        _ts("finished_at", nullable=True),
        sa.Column("created_by", sa.String(32), nullable=True),
        sa.CheckConstraint("kind IN ('train', 'finetune', 'evaluate')", name=op.f("ck_jobs_kind")),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')",
            name=op.f("ck_jobs_state"),
        ),
        sa.CheckConstraint("progress >= 0 AND progress <= 1", name=op.f("ck_jobs_progress")),
        _fk("project_id", "projects", "jobs"),
        _fk("created_by", "users", "jobs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_state_created_at", "jobs", ["state", "created_at"])
    op.create_index("ix_jobs_project_id_created_at", "jobs", ["project_id", "created_at"])
    op.create_index(
        "ux_jobs_one_learning_job",
        "jobs",
        ["project_id"],
        unique=True,
        sqlite_where=sa.text(_ONE_LEARNING_JOB),
        postgresql_where=sa.text(_ONE_LEARNING_JOB),
    )
    op.create_table(
        "audit_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        _ts("at"),
        sa.Column("actor_id", sa.String(32), nullable=True),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("resource_id", sa.String(64), nullable=True),
        sa.Column("project_id", sa.String(32), nullable=True),
        sa.Column("client_ip", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('ok', 'denied', 'error')", name=op.f("ck_audit_events_outcome")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_project_id_id", "audit_events", ["project_id", "id"])
    op.create_index("ix_audit_events_at", "audit_events", ["at"])


def downgrade() -> None:
    """Drop every table (children first)."""
    for table in (
        "audit_events",
        "jobs",
        "corrections",
        "analyses",
        "reference_pairs",
        "images",
        "users",
        "projects",
    ):
        op.drop_table(table)
