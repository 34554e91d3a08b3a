"""Group commit: the small writes of concurrent requests share one transaction and one fsync.

Every analysis and every audited request appends a row, and on SQLite each commit
fsyncs the write-ahead log while holding the one write lock; under load the requests
queue for it. :class:`GroupCommit` lets them share (:class:`~medloop.combine.Combiner`):
the first caller commits its own write; callers that arrive meanwhile wait, and the
next of them commits all of theirs in one transaction. Each write runs in a savepoint
of its own, so one that fails is rolled back alone and its caller gets the error; the
others are committed. Every caller returns only after its row is durable, as with a
transaction of its own. No thread is added: the callers do the work.

Use it for appends that take no locks (audit events, analysis rows), never for
writes that lock a project's row::

    record = db.grouped(lambda s: repo.create_analysis(s, ...))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from medloop.combine import Combiner, Failed

__all__ = ["GroupCommit"]

T = TypeVar("T")
Work = Callable[[Session], Any]


class GroupCommit:
    """Commits the writes of concurrent callers together (see the module doc).

    Args:
        sessions: the session factory of the database's writes.
        max_batch: at most this many writes share a transaction.
    """

    def __init__(self, sessions: sessionmaker[Session], max_batch: int = 64) -> None:
        self._sessions = sessions
        self._combiner: Combiner[Work, Any] = Combiner(self._commit, max_batch)

    @property
    def transactions(self) -> int:
        return self._combiner.batches

    @property
    def writes(self) -> int:
        return self._combiner.items

    def run(self, work: Callable[[Session], T]) -> T:
        """Run ``work(session)`` in a shared transaction; returns once it is committed.

        Raises:
            Exception: what ``work`` raised (its savepoint was rolled back), or the
                commit's error (nothing of the batch was written).
        """
        result: T = self._combiner.submit(work)
        return result

    def _commit(self, batch: list[Work]) -> list[Any]:
        outcomes: list[Any] = []
        with self._sessions() as session:
            try:
                for work in batch:
                    try:
                        with session.begin_nested():
                            outcomes.append(work(session))
                    except Exception as err:  # this write alone is rolled back
                        outcomes.append(Failed(err))
                session.commit()
            except BaseException:
                session.rollback()
                raise
        return outcomes
