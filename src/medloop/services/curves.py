"""A learning job's live curve: the training loss and the validation Dice, by step.

:class:`CurveRecorder` collects the points the trainer reports and writes them a few
at a time (at most every few seconds, and at every validation), so a browser can
draw the curve while the job runs; :class:`JobCurves` reads them back.
"""

from __future__ import annotations

import logging
import time

from medloop.domain.jobs import CurvePoint
from medloop.jobs.queue import JobQueue
from medloop.storage import repositories as repo
from medloop.storage.database import Database

__all__ = ["CurveRecorder", "JobCurves"]

log = logging.getLogger(__name__)

LOSS_POINTS = 200
"""About this many loss points per run (one every ``total // 200`` steps)."""
FLUSH_S = 3.0
"""Seconds between writes: each is a committed transaction, paid by the training thread."""


class CurveRecorder:
    """Buffer a job's curve points and write them in small batches.

    Args:
        db: the database.
        job_id: the job.
        attempt: the job's attempt (a resumed run's points replace the earlier ones).
    """

    def __init__(self, db: Database, job_id: str, attempt: int) -> None:
        self.db, self.job_id, self.attempt = db, job_id, attempt
        self._pending: list[CurvePoint] = []
        self._last = time.monotonic()

    def loss(self, step: int, total: int, value: float) -> None:
        """A training step's loss (kept for about :data:`LOSS_POINTS` steps of the run)."""
        every = max(1, total // LOSS_POINTS)
        if step % every == 0 or step == total:
            self._pending.append(CurvePoint(step, "loss", float(value)))
        if step == total or time.monotonic() - self._last >= FLUSH_S:
            self.flush()

    def val_dice(self, step: int, value: float) -> None:
        """A validation Dice score (written at once)."""
        self._pending.append(CurvePoint(step, "val_dice", float(value)))
        self.flush()

    def flush(self) -> None:
        """Write what is buffered; a failed write is retried with the next batch."""
        self._last = time.monotonic()
        if not self._pending:
            return
        points, self._pending = self._pending, []
        try:
            with self.db.write() as s:
                repo.add_curve_points(s, self.job_id, self.attempt, points)
        except Exception:
            log.exception("could not record the curve of job %s; will retry", self.job_id)
            self._pending = points + self._pending


class JobCurves:
    """Read a job's curve.

    Args:
        db: the database.
        queue: the job queue (to check that the job is the project's).
    """

    def __init__(self, db: Database, queue: JobQueue) -> None:
        self.db, self.queue = db, queue

    def points(self, project_id: str, job_id: str, after: int = 0) -> list[tuple[int, CurvePoint]]:
        """``(id, point)`` of the job's latest attempt, those after id ``after``.

        Raises:
            NotFoundError: no such job in the project.
        """
        self.queue.get(job_id, project_id)
        with self.db.read() as s:
            return repo.curve_points(s, job_id, max(0, after))
