"""Database fixtures shared by the storage and jobs tests.

Every test using ``engine`` runs on SQLite (a file in ``tmp_path``) and again on
PostgreSQL when ``MEDLOOP_TEST_POSTGRES_URL`` is set (that database is wiped first).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from medloop.domain.settings import ProjectSettings
from medloop.storage import Database, make_engine, migrate, session_factory
from medloop.storage import repositories as repo
from medloop.storage.models import Base

__all__ = ["database", "db_url", "downgrade", "engine", "project_id", "sessions", "settings_of"]

POSTGRES_ENV = "MEDLOOP_TEST_POSTGRES_URL"


def _reset_postgres(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL (SQLite file, or the PostgreSQL test database)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'medloop.db'}"
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"set {POSTGRES_ENV} to run PostgreSQL tests")
    _reset_postgres(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated database's engine."""
    migrate(db_url)
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """A session factory on the migrated database."""
    return session_factory(engine)


def settings_of(*names: str, **values: object) -> ProjectSettings:
    """Project settings with labels ``names`` (default one, ``nucleus``) and ``values``."""
    labels = [
        {"value": i + 1, "name": n, "color": "#ff0000"} for i, n in enumerate(names or ("nucleus",))
    ]
    return ProjectSettings.parse({"labels": labels, **values})


@pytest.fixture
def database(engine: Engine) -> Database:
    """The unit of work on the migrated database."""
    return Database(engine)


@pytest.fixture
def project_id(sessions: sessionmaker[Session]) -> str:
    """A project named ``p1`` with one label."""
    with sessions.begin() as s:
        settings = settings_of(image_kind="fluorescence", finetune_every=5)
        return repo.create_project(s, "p1", settings).id


def downgrade(engine: Engine, revision: str) -> None:
    """Take the database on ``engine`` down to Alembic ``revision``."""
    from alembic import command
    from alembic.config import Config

    from medloop.storage.db import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)
