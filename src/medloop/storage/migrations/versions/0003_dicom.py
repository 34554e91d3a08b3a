"""DICOM: project DICOM settings, the DICOMweb sync ledger, pseudonyms, ``dicomweb_sync`` jobs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-02-01 00:00:01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS_BEFORE = "kind IN ('train', 'finetune', 'evaluate')"
_KINDS_AFTER = "kind IN ('train', 'finetune', 'evaluate', 'dicomweb_sync')"


def _fk(column: str, table: str, owner: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{table}.id"], name=op.f(f"fk_{owner}_{column}_{table}")
    )


def _job_kinds(check: str) -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint(op.f("ck_jobs_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_jobs_kind"), check)


def upgrade() -> None:
    """Add ``projects.dicom``, the ``dicom_instances`` and ``pseudonyms`` tables, the job kind."""
    with op.batch_alter_table("projects") as batch:
        batch.add_column(
            sa.Column("dicom", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
    _job_kinds(_KINDS_AFTER)
    op.create_table(
        "dicom_instances",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("sop_instance_uid", sa.String(64), nullable=False),
        sa.Column("study_instance_uid", sa.String(64), nullable=False),
        sa.Column("series_instance_uid", sa.String(64), nullable=False),
        sa.Column("sop_class_uid", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("image_id", sa.String(32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('source', 'seg_out', 'seg_in', 'other')",
            name=op.f("ck_dicom_instances_kind"),
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'analysed', 'done', 'failed', 'skipped')",
            name=op.f("ck_dicom_instances_state"),
        ),
        _fk("project_id", "projects", "dicom_instances"),
        _fk("image_id", "images", "dicom_instances"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dicom_instances")),
        sa.UniqueConstraint(
            "project_id",
            "sop_instance_uid",
            name=op.f("uq_dicom_instances_project_id_sop_instance_uid"),
        ),
    )
    op.create_index(
        "ix_dicom_instances_project_id_state", "dicom_instances", ["project_id", "state"]
    )
    op.create_table(
        "pseudonyms",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("original", sa.String(255), nullable=False),
        sa.Column("pseudonym", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("project_id", "projects", "pseudonyms"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pseudonyms")),
        sa.UniqueConstraint(
            "project_id", "kind", "original", name=op.f("uq_pseudonyms_project_id_kind_original")
        ),
    )


def downgrade() -> None:
    """Drop what :func:`upgrade` added (``dicomweb_sync`` jobs must be gone first)."""
    op.drop_table("pseudonyms")
    op.drop_index("ix_dicom_instances_project_id_state", table_name="dicom_instances")
    op.drop_table("dicom_instances")
    op.execute("DELETE FROM jobs WHERE kind = 'dicomweb_sync'")
    _job_kinds(_KINDS_BEFORE)
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("dicom")
