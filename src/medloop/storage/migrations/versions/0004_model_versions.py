"""Model versions in the database: typed project settings, versions, events, checkpoints.

- ``projects.settings`` replaces ``labels``, ``image_kind`` and ``learning``: the
  project's :class:`~medloop.domain.settings.ProjectSettings` as JSON. Old rows are
  converted: ``learning`` held the fine-tune policy (``correction_weight``,
  ``replay_size``, ``steps``, ``lr``, ``held_out_share``), the gate (``acceptance``:
  its ``max_class_dice_drop`` becomes the paired gate's ``margin``),
  the training from scratch (``train_steps``, ``patch_size``, ``channels``, ``color``,
  ``val_every``) and ``finetune_every``; only what was set is carried over, so the
  settings' own defaults apply to the rest.
- ``model_versions``, ``model_files``, ``model_events`` and ``training_checkpoints``
  hold what the per-project registry folders held.
- Given the data folder (``medloop.storage.db.migrate(..., data_dir=...)``, as the
  server does), every ``<data_dir>/projects/<id>/registry`` is imported: versions
  with their statuses, metrics, lineage and gate reports, the weights into the blob
  store, and the events. The folders are left in place and can be deleted afterwards
  (see :mod:`medloop.storage.migrations.legacy_registry`).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

_LEARNING = ("correction_weight", "replay_size", "steps", "lr", "held_out_share")
_TRAINING = (
    ("train_steps", "steps"),
    ("patch_size", "patch_size"),
    ("channels", "channels"),
    ("color", "color"),
    ("val_every", "val_every"),
)


def settings_from_legacy(
    labels: list[dict[str, Any]], image_kind: str, learning: dict[str, Any] | None
) -> dict[str, Any]:
    """The ``ProjectSettings`` JSON of a project stored before 0004 (what was set only)."""
    old = dict(learning or {})
    out: dict[str, Any] = {"labels": list(labels), "image_kind": image_kind or "microscopy"}
    policy = {k: old[k] for k in _LEARNING if k in old}
    if policy:
        out["learning"] = policy
    acceptance = old.get("acceptance")
    if isinstance(acceptance, dict) and "max_class_dice_drop" in acceptance:
        # The gate's margin was the largest allowed drop of a class's Dice.
        out["acceptance"] = {"margin": acceptance["max_class_dice_drop"]}
    training = {new: old[key] for key, new in _TRAINING if key in old}
    if "patch_size" in training:  # a square patch: one side
        training["patch_size"] = [training["patch_size"]]
    if training:
        out["training"] = training
    if "finetune_every" in old:
        out["finetune_every"] = old["finetune_every"]
    return out


def _legacy_learning(settings: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`settings_from_legacy`, for the downgrade."""
    out: dict[str, Any] = dict(settings.get("learning") or {})
    training = {k: v for k, v in (settings.get("training") or {}).items() if v is not None}
    if training.get("patch_size"):
        training["patch_size"] = training["patch_size"][0]
    out.update({key: training[new] for key, new in _TRAINING if new in training})
    margin = (settings.get("acceptance") or {}).get("margin")
    if margin is not None:
        out["acceptance"] = {"max_class_dice_drop": margin, "min_heldout_gain": 0.0}
    if "finetune_every" in settings:
        out["finetune_every"] = settings["finetune_every"]
    return out


def _fk(column: str, table: str, owner: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{table}.id"], name=op.f(f"fk_{owner}_{column}_{table}")
    )


def _create_tables() -> None:
    op.create_table(
        "model_versions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(16), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("parent", sa.String(16), nullable=True),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("lineage", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('candidate', 'production', 'rejected', 'retired')",
            name=op.f("ck_model_versions_status"),
        ),
        _fk("project_id", "projects", "model_versions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_model_versions_project_id_name")),
        sa.UniqueConstraint(
            "project_id", "number", name=op.f("uq_model_versions_project_id_number")
        ),
    )
    op.create_index(
        "ux_model_versions_one_production",
        "model_versions",
        ["project_id"],
        unique=True,
        sqlite_where=sa.text("status = 'production'"),
        postgresql_where=sa.text("status = 'production'"),
    )
    op.create_table(
        "model_files",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("version_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("blob_key", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        _fk("version_id", "model_versions", "model_files"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_files")),
        sa.UniqueConstraint("version_id", "name", name=op.f("uq_model_files_version_id_name")),
    )
    op.create_index("ix_model_files_version_id", "model_files", ["version_id"])
    op.create_table(
        "model_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("previous", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "event IN ('created', 'promoted', 'rejected', 'rolled_back')",
            name=op.f("ck_model_events_event"),
        ),
        _fk("project_id", "projects", "model_events"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_events")),
    )
    op.create_index("ix_model_events_project_id_id", "model_events", ["project_id", "id"])
    op.create_table(
        "training_checkpoints",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("run_key", sa.String(200), nullable=False),
        sa.Column("blob_key", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _fk("project_id", "projects", "training_checkpoints"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_checkpoints")),
        sa.UniqueConstraint(
            "project_id", "run_key", name=op.f("uq_training_checkpoints_project_id_run_key")
        ),
    )


def _drop_columns(table: str, *columns: str) -> None:
    # SQLite: ALTER TABLE ... DROP COLUMN (3.35+), not Alembic's batch rebuild, which
    # drops and recreates the table while other tables' rows point at it: with foreign
    # keys on (inside a transaction they cannot be turned off) that cannot commit.
    if op.get_bind().dialect.name != "sqlite":
        for column in columns:
            op.drop_column(table, column)
        return
    import sqlite3

    if sqlite3.sqlite_version_info < (3, 35):
        raise RuntimeError(
            f"migration 0004 needs SQLite 3.35 or newer, not {sqlite3.sqlite_version}"
        )
    for column in columns:
        op.execute(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')


def _projects() -> sa.TableClause:
    """The columns of ``projects`` this migration reads and writes, old and new."""
    return sa.table(
        "projects",
        sa.column("id", sa.String()),
        sa.column("labels", sa.JSON()),
        sa.column("image_kind", sa.String()),
        sa.column("learning", sa.JSON()),
        sa.column("settings", sa.JSON()),
    )


def _convert_settings() -> None:
    op.add_column(
        "projects",
        sa.Column("settings", sa.JSON(), nullable=False, server_default=sa.text("'{}'")),
    )
    projects = _projects()
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(projects.c.id, projects.c.labels, projects.c.image_kind, projects.c.learning)
    ).all()
    for pid, labels, image_kind, learning in rows:
        conn.execute(
            projects.update()
            .where(projects.c.id == pid)
            .values(settings=settings_from_legacy(labels or [], image_kind, learning))
        )
    if op.get_bind().dialect.name != "sqlite":  # SQLite keeps the (unused) default
        op.alter_column("projects", "settings", server_default=None)
    _drop_columns("projects", "labels", "image_kind", "learning")


def upgrade() -> None:
    """Create the tables, convert project settings, import registry folders if given."""
    _create_tables()
    _convert_settings()
    data_dir = context.config.attributes.get("medloop_data_dir")
    if data_dir is None:
        return
    from medloop.storage.migrations.legacy_registry import import_registries

    imported = import_registries(op.get_bind(), Path(data_dir))
    if imported:
        log.info("imported %d model version(s) from registry folders", imported)


def downgrade() -> None:
    """Back to per-project ``labels``/``image_kind``/``learning`` (versions are dropped)."""
    for column in (
        sa.Column("labels", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
        sa.Column("image_kind", sa.String(50), nullable=False, server_default="microscopy"),
        sa.Column("learning", sa.JSON(), nullable=False, server_default=sa.text("'{}'")),
    ):
        op.add_column("projects", column)
    projects = _projects()
    conn = op.get_bind()
    for pid, settings in conn.execute(sa.select(projects.c.id, projects.c.settings)).all():
        conn.execute(
            projects.update()
            .where(projects.c.id == pid)
            .values(
                labels=settings.get("labels", []),
                image_kind=str(settings.get("image_kind", "microscopy"))[:50],
                learning=_legacy_learning(settings),
            )
        )
    _drop_columns("projects", "settings")
    op.drop_table("training_checkpoints")
    op.drop_index("ix_model_events_project_id_id", table_name="model_events")
    op.drop_table("model_events")
    op.drop_index("ix_model_files_version_id", table_name="model_files")
    op.drop_table("model_files")
    op.drop_index("ux_model_versions_one_production", table_name="model_versions")
    op.drop_table("model_versions")
