"""Group commit: the small writes of concurrent requests share one transaction and one fsync.

Every analysis and every audited request appends a row, and on SQLite each commit
fsyncs the write-ahead log while holding the one write lock; under load the requests
queue for it. :class:`GroupCommit` lets them share: the first caller becomes the
leader and commits its own write; callers that arrive meanwhile wait, and the next
leader (the oldest of them) commits all of theirs in one transaction. Each write runs
in a savepoint of its own, so one that fails is rolled back alone and its caller gets
the error; the others are committed. Every caller returns only after its row is
durable, as with a transaction of its own. No thread is added: leaders are callers.

Use it for appends that take no locks (audit events, analysis rows), never for
writes that lock a project's row::

    record = db.grouped(lambda s: repo.create_analysis(s, ...))
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session, sessionmaker

__all__ = ["GroupCommit"]

T = TypeVar("T")


class _Write(Generic[T]):
    def __init__(self, work: Callable[[Session], T]) -> None:
        self.work = work
        self.wake = threading.Event()
        self.lead = False
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.done = result, error, True
        self.wake.set()


class GroupCommit:
    """Commits the writes of concurrent callers together (see the module doc).

    Args:
        sessions: the session factory of the database's writes.
        max_batch: at most this many writes share a transaction.
    """

    def __init__(self, sessions: sessionmaker[Session], max_batch: int = 64) -> None:
        self._sessions = sessions
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._pending: list[_Write[Any]] = []
        self._leading = False
        self.transactions = 0
        self.writes = 0

    def run(self, work: Callable[[Session], T]) -> T:
        """Run ``work(session)`` in a shared transaction; returns once it is committed.

        Raises:
            Exception: what ``work`` raised (its savepoint was rolled back), or the
                commit's error (nothing of the batch was written).
        """
        write: _Write[T] = _Write(work)
        with self._lock:
            self._pending.append(write)
            if not self._leading:
                self._leading = write.lead = True
        while not write.done:
            if not write.lead:
                write.wake.wait()
                write.wake.clear()
            if write.lead and not write.done:
                self._lead()
        if write.error is not None:
            raise write.error
        result: T = write.result
        return result

    def _lead(self) -> None:
        with self._lock:
            batch = self._pending[: self._max_batch]
            del self._pending[: len(batch)]
        try:
            self._commit(batch)
        finally:
            with self._lock:
                if self._pending:
                    following = self._pending[0]
                    following.lead = True
                    following.wake.set()
                else:
                    self._leading = False

    def _commit(self, batch: list[_Write[Any]]) -> None:
        session = self._sessions()
        ok: list[tuple[_Write[Any], Any]] = []
        try:
            for write in batch:
                try:
                    with session.begin_nested():
                        result = write.work(session)
                except Exception as err:  # this write alone is rolled back
                    write.finish(error=err)
                else:
                    ok.append((write, result))
            session.commit()
        except BaseException as err:
            session.rollback()
            for write, _ in ok:
                write.finish(error=err)
            for write in batch:
                if not write.done:
                    write.finish(error=err)
            if not isinstance(err, Exception):
                raise
            return
        finally:
            session.close()
        self.transactions += 1
        self.writes += len(ok)
        for write, result in ok:
            write.finish(result)
