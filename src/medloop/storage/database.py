"""The unit of work: short write and read transactions on one database.

::

    db = Database.open(settings.db_url, data_dir=settings.data_dir)   # migrates
    with db.write() as s:                 # committed on success, rolled back on error
        project = repo.create_project(s, "nuclei", settings)
    with db.read() as s:                  # never takes SQLite's write lock
        projects = repo.list_projects(s)
    event = db.grouped(lambda s: repo.record_event(s, ...))   # an append, committed with
                                                              # those of concurrent callers

Keep transactions short: never hold one across model work or a PACS call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from medloop.storage.db import SQLITE_BEGIN_OPTION, is_sqlite, make_engine, migrate, session_factory
from medloop.storage.group_commit import GroupCommit

__all__ = ["Database"]

T = TypeVar("T")


class Database:
    """Sessions on one engine: :meth:`write` (``BEGIN IMMEDIATE`` on SQLite) and :meth:`read`.

    Args:
        engine: an engine made by :func:`~medloop.storage.db.make_engine`.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = session_factory(engine)
        # Read-only work takes no write lock (SQLite: a deferred transaction).
        self._reads = session_factory(engine.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"}))
        self._group = GroupCommit(self.sessions)

    @classmethod
    def open(cls, url: str, *, data_dir: Path | None = None, upgrade: bool = True) -> Database:
        """Connect to ``url``, first bringing its schema up to date (with ``upgrade``).

        Args:
            data_dir: the server's data folder, for migrations that carry files over.
        """
        engine = make_engine(url)
        if upgrade:
            migrate(engine, data_dir=data_dir)
        return cls(engine)

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A short transaction: committed on success, rolled back on error."""
        s = self.sessions()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def grouped(self, work: Callable[[Session], T]) -> T:
        """Run an append (``work(session)``) in a transaction shared with concurrent
        callers' appends; returns once it is committed. See
        :class:`~medloop.storage.group_commit.GroupCommit`."""
        return self._group.run(work)

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction that never blocks on, or blocks, writers."""
        s = self._reads()
        try:
            yield s
            s.commit()  # ends the read; nothing written
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.engine)

    def ping(self) -> None:
        """Run ``SELECT 1`` (raises if the database cannot be reached)."""
        with self.read() as s:
            s.execute(text("SELECT 1"))

    def describe(self) -> str:
        """The database URL without its password."""
        return self.engine.url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()
