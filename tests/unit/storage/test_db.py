"""Engine settings, migrations as the single source of the schema, UTC timestamps."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from medloop.storage import make_engine, migrate, session_factory
from medloop.storage import repositories as repo
from medloop.storage.db import is_sqlite
from medloop.storage.models import Base, Image, Project

from .dbfixtures import settings_of

TABLES = {
    "projects",
    "users",
    "images",
    "reference_pairs",
    "analyses",
    "corrections",
    "jobs",
    "audit_events",
    "dicom_instances",
    "pseudonyms",
    "model_versions",
    "model_files",
    "model_events",
    "training_checkpoints",
    "api_tokens",
    "job_curve_points",
    "erasures",
    "erased_items",
}


def test_migrations_create_the_schema_of_the_models(engine: Engine) -> None:
    assert TABLES | {"alembic_version"} == set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_migrate_twice_is_a_no_op(db_url: str, engine: Engine) -> None:
    migrate(db_url)
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0008"


def test_sqlite_pragmas(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'dir' / 'x.db'}"
    engine = make_engine(url)
    try:
        assert (tmp_path / "new" / "dir").is_dir()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
    assert is_sqlite(url)
    assert not is_sqlite("postgresql+psycopg://u@h/db")


def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(ValueError, match="SQLite file"):
        make_engine("sqlite://")


def test_foreign_keys_are_enforced(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(IntegrityError), sessions.begin() as s:
        s.add(
            Image(
                project_id="0" * 32,
                sha256="a" * 64,
                blob_key="a" * 64,
                filename="x.png",
                content_type="image/png",
                width=1,
                height=1,
                channels=1,
            )
        )


def test_timestamps_are_aware_utc(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        project = repo.create_project(s, "p", settings_of())
    with sessions() as s:
        loaded = s.get(Project, project.id)
        assert loaded is not None
        assert loaded.created_at.tzinfo is not None
        assert loaded.created_at.utcoffset() == timedelta(0)
        assert abs(loaded.created_at - datetime.now(UTC)) < timedelta(minutes=1)
    with sessions.begin() as s:
        other = s.get(Project, project.id)
        assert other is not None
        other.created_at = datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    with sessions() as s:
        loaded = s.get(Project, project.id)
        assert loaded is not None
        assert loaded.created_at == datetime(2024, 1, 1, 10, tzinfo=UTC)


def test_naive_timestamps_are_refused(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(Exception, match="naive datetime"), sessions.begin() as s:
        s.add(Project(name="n", settings={}, created_at=datetime(2024, 1, 1)))


def test_sqlite_readers_can_defer_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    migrate(url)
    engine = make_engine(url)
    try:
        writes = session_factory(engine)
        reads = session_factory(engine.execution_options(sqlite_begin="DEFERRED"))
        with writes.begin() as writer:
            repo.create_project(writer, "uncommitted", settings_of())  # holds the write lock
            started = time.monotonic()
            with reads() as reader:
                assert repo.list_projects(reader) == []
            assert time.monotonic() - started < 5
        with reads() as reader:
            assert [p.name for p in repo.list_projects(reader)] == ["uncommitted"]
    finally:
        engine.dispose()
