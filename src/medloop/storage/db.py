"""Engines, sessions and migrations, built from a database URL (never at import time).

SQLite (the embedded default) is tuned for a server: write-ahead logging, fsync on
every commit (``synchronous=FULL``), a 30 s busy timeout and enforced foreign keys.
SQLAlchemy, not the ``sqlite3`` module, emits ``BEGIN``; by default it is
``BEGIN IMMEDIATE``, so a transaction that reads and then writes never fails with
"database is locked" because another writer committed in between: writers queue on
the busy timeout instead. Read-only work may use a deferred engine::

    engine = make_engine(settings.db_url)
    migrate(settings.db_url)
    Session = session_factory(engine)
    ReadSession = session_factory(engine.execution_options(sqlite_begin="DEFERRED"))

Keep sessions short: never hold one across model work.

PostgreSQL (``postgresql+psycopg://...``) gets a plain engine with ``pool_pre_ping``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session, sessionmaker

__all__ = [
    "DATA_DIR_ATTRIBUTE",
    "SQLITE_BEGIN_OPTION",
    "is_sqlite",
    "make_engine",
    "migrate",
    "session_factory",
]

SQLITE_BEGIN_OPTION = "sqlite_begin"
"""Execution option naming the SQLite ``BEGIN`` mode: ``IMMEDIATE`` (default) or ``DEFERRED``."""

_BEGIN_MODES = ("DEFERRED", "IMMEDIATE", "EXCLUSIVE")
_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA foreign_keys=ON",
)
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 0x6D6C6F6F70  # "mloop": the advisory lock key of schema upgrades


def is_sqlite(engine_or_url: Engine | str) -> bool:
    """Whether an engine or URL points to SQLite."""
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (see _sqlite_begin)
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    mode = str(conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "IMMEDIATE")).upper()
    if mode not in _BEGIN_MODES:
        raise ValueError(f"{SQLITE_BEGIN_OPTION} must be one of {_BEGIN_MODES}, got {mode!r}")
    conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url``, configured for concurrent server use.

    Args:
        url: SQLAlchemy URL, e.g. ``sqlite:////data/medloop.db`` or
            ``postgresql+psycopg://user@host/db``. A SQLite file's parent folder is created.
        **kwargs: passed to :func:`sqlalchemy.create_engine`.

    Returns:
        The engine. In-memory SQLite is refused: each connection would see its own database.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, **kwargs)
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise ValueError(f"medloop needs a SQLite file, got {url!r}")
    Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("check_same_thread", False)
    connect_args.setdefault("timeout", 30.0)
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit (``expire_on_commit=False``)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


DATA_DIR_ATTRIBUTE = "medloop_data_dir"
"""Alembic config attribute holding the server's data folder (migrations that move files)."""


def migrate(
    url_or_engine: str | Engine, revision: str = "head", *, data_dir: Path | None = None
) -> None:
    """Bring the database schema up to ``revision`` with Alembic (the only way tables are made).

    Args:
        url_or_engine: database URL, or an engine made by :func:`make_engine`.
        revision: target revision; ``head`` is the newest.
        data_dir: the server's data folder. Migrations that carry files into the
            database and the blob store (0004: the model registry folders) read it;
            without one they change only the schema.
    """
    from alembic import command
    from alembic.config import Config

    own = isinstance(url_or_engine, str)
    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option(
        "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Replicas and workers starting together: one migrates, the others wait
                # and then find the schema at head.
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            config.attributes["connection"] = connection
            config.attributes[DATA_DIR_ATTRIBUTE] = data_dir
            command.upgrade(config, revision)
    finally:
        if own:
            engine.dispose()
