"""Running medloop without a shell: tokens, archived projects, groups, curves, erasure.

- ``api_tokens``: a user may hold several tokens, each with an optional expiry, its
  last use and its revocation. Each user's one token (``users.token_hash``) becomes
  a token named ``initial`` without expiry, so no installed device loses access.
- ``users.kind``: ``person`` or ``device`` (existing users become people).
- ``projects.archived_at``; ``reference_pairs.group_name``.
- ``reference_import`` and ``erasure`` jobs, and ``job_curve_points`` (the loss and
  validation Dice a learning job reports).
- ``erasures`` and ``erased_items``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10 00:00:00
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_KINDS = "kind IN ('train', 'finetune', 'evaluate', 'dicomweb_sync')"
_NEW_KINDS = (
    "kind IN ('train', 'finetune', 'evaluate', 'dicomweb_sync', 'reference_import', 'erasure')"
)


def _fk(column: str, table: str, owner: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{table}.id"], name=op.f(f"fk_{owner}_{column}_{table}")
    )


def _ts(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _serial() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True)


def _job_kinds(check: str) -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint(op.f("ck_jobs_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_jobs_kind"), check)


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(tzinfo=None) if op.get_bind().dialect.name == "sqlite" else now


def _tokens_table() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        _ts("created_at"),
        _ts("expires_at", True),
        _ts("last_used_at", True),
        _ts("revoked_at", True),
        sa.Column("created_by", sa.String(200), nullable=True),
        _fk("user_id", "users", "api_tokens"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
    )
    op.create_index("ix_api_tokens_token_hash", "api_tokens", ["token_hash"], unique=True)
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])


def _move_tokens_out() -> None:
    """Each user's token becomes its ``initial`` token; then ``users.token_hash`` goes."""
    conn = op.get_bind()
    users = conn.execute(sa.text("SELECT id, token_hash FROM users")).all()
    tokens = sa.table(
        "api_tokens",
        *(sa.column(c, sa.String()) for c in ("id", "user_id", "name", "token_hash", "created_by")),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    if users:
        op.bulk_insert(
            tokens,
            [
                {
                    "id": uuid.uuid4().hex,
                    "user_id": uid,
                    "name": "initial",
                    "token_hash": token_hash,
                    "created_by": None,
                    "created_at": _now(),
                }
                for uid, token_hash in users
            ],
        )
    op.drop_index("ix_users_token_hash", table_name="users")
    _users_columns(upgrade=True)


def _drop_column(table: str, column: str) -> None:
    """Drop a column in place: SQLite's batch mode would rebuild the table, which fails the
    foreign keys of the tables that point to it."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    else:
        op.drop_column(table, column)


def _users_columns(upgrade: bool) -> None:
    """Swap ``users.token_hash`` for ``users.kind`` (or back), in place."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    check = "kind IN ('person', 'device')"
    if upgrade:
        _drop_column("users", "token_hash")
    elif not sqlite:
        op.drop_constraint(op.f("ck_users_kind"), "users", type_="check")
    if upgrade and sqlite:
        op.execute(
            "ALTER TABLE users ADD COLUMN kind VARCHAR(8) DEFAULT 'person' NOT NULL "
            f"CONSTRAINT ck_users_kind CHECK ({check})"
        )
    elif upgrade:
        op.add_column(
            "users", sa.Column("kind", sa.String(8), nullable=False, server_default="person")
        )
        op.create_check_constraint(op.f("ck_users_kind"), "users", check)
    else:
        _drop_column("users", "kind")
        op.add_column("users", sa.Column("token_hash", sa.String(64), nullable=True))


def _erasure_tables() -> None:
    op.create_table(
        "erasures",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("value_sha256", sa.String(64), nullable=False),
        sa.Column("pending_value", sa.String(255), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("actor_id", sa.String(32), nullable=True),
        sa.Column("job_id", sa.String(32), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        _ts("created_at"),
        _ts("finished_at", True),
        sa.CheckConstraint(
            "scope IN ('patient', 'study', 'image')", name=op.f("ck_erasures_scope")
        ),
        sa.CheckConstraint("state IN ('queued', 'done', 'failed')", name=op.f("ck_erasures_state")),
        _fk("project_id", "projects", "erasures"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasures")),
    )
    op.create_index("ix_erasures_project_id_created_at", "erasures", ["project_id", "created_at"])
    op.create_table(
        "erased_items",
        _serial(),
        sa.Column("erasure_id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("item_id", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.CheckConstraint(
            "kind IN ('image', 'reference', 'analysis', 'correction')",
            name=op.f("ck_erased_items_kind"),
        ),
        _fk("erasure_id", "erasures", "erased_items"),
        _fk("project_id", "projects", "erased_items"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erased_items")),
    )
    op.create_index("ix_erased_items_erasure_id", "erased_items", ["erasure_id"])
    op.create_index("ix_erased_items_project_id_item_id", "erased_items", ["project_id", "item_id"])


def _curve_table() -> None:
    op.create_table(
        "job_curve_points",
        _serial(),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(16), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        _ts("at"),
        sa.CheckConstraint(
            "metric IN ('loss', 'val_dice')", name=op.f("ck_job_curve_points_metric")
        ),
        _fk("job_id", "jobs", "job_curve_points"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_curve_points")),
    )
    op.create_index("ix_job_curve_points_job_id_id", "job_curve_points", ["job_id", "id"])


def upgrade() -> None:
    """Tokens out of ``users``; archive dates, groups, the new job kinds and tables."""
    _tokens_table()
    _move_tokens_out()
    op.add_column("projects", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("reference_pairs", sa.Column("group_name", sa.String(64), nullable=True))
    _job_kinds(_NEW_KINDS)
    _curve_table()
    _erasure_tables()


def downgrade() -> None:
    """Back to 0004: each user keeps its newest token that still works (or none that does).

    Jobs of the new kinds, curves, erasure records, groups and archive dates are dropped;
    erased rows stay erased.
    """
    op.drop_table("erased_items")
    op.drop_table("erasures")
    op.drop_table("job_curve_points")
    op.execute("DELETE FROM jobs WHERE kind IN ('reference_import', 'erasure')")
    _job_kinds(_OLD_KINDS)
    _drop_column("reference_pairs", "group_name")
    _drop_column("projects", "archived_at")
    conn = op.get_bind()
    _users_columns(upgrade=False)
    rows = conn.execute(
        sa.text(
            "SELECT user_id, token_hash FROM api_tokens WHERE revoked_at IS NULL "
            "ORDER BY created_at"
        )
    ).all()
    newest = {uid: token_hash for uid, token_hash in rows}
    for (uid,) in conn.execute(sa.text("SELECT id FROM users")).all():
        # A user without a working token gets a hash no token has.
        fallback = hashlib.sha256(secrets.token_bytes(32)).hexdigest()
        conn.execute(
            sa.text("UPDATE users SET token_hash = :h WHERE id = :id"),
            {"h": newest.get(uid, fallback), "id": uid},
        )
    if conn.dialect.name != "sqlite":  # SQLite keeps it nullable; every row has one
        op.alter_column("users", "token_hash", existing_type=sa.String(64), nullable=False)
    op.create_index("ix_users_token_hash", "users", ["token_hash"], unique=True)
    op.drop_index("ix_api_tokens_user_id", table_name="api_tokens")
    op.drop_index("ix_api_tokens_token_hash", table_name="api_tokens")
    op.drop_table("api_tokens")
