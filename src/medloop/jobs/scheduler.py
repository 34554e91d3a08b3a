"""Periodic ``dicomweb_sync`` jobs: a small thread that queues them, the worker runs them.

Every ``tick_s`` the scheduler looks at the projects connected to an enabled DICOMweb
server and queues a sync (coalesced: at most one waits per project) once the
project's poll interval has passed since the last one. After a sync that found the
PACS unreachable the interval doubles, up to :data:`MAX_BACKOFF_S`, and falls back
once the PACS answers again.

Every API replica runs a scheduler, and the poll still happens once per interval
across the cluster: the queue decides under the project's row lock whether a sync
was queued within the interval (``not_within_s``), so replicas that tick at the same
moment queue one job.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from medloop.domain.dicom import DicomSettings
from medloop.errors import MedloopError
from medloop.jobs.queue import JobQueue
from medloop.storage import repo_dicom
from medloop.storage.database import Database

__all__ = ["MAX_BACKOFF_S", "SyncScheduler", "next_delay"]

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 3600.0


def next_delay(interval_s: float, outages: int) -> float:
    """Seconds until the next sync after ``outages`` consecutive unreachable-PACS runs."""
    return min(MAX_BACKOFF_S, interval_s * (2 ** min(outages, 16)))


class SyncScheduler:
    """Queues ``dicomweb_sync`` jobs for connected projects (see module doc).

    Args:
        db: the database (which projects are connected).
        queue: where the syncs are queued.
        wake: called after queueing (wakes an idle in-process worker).
        tick_s: how often to look.
    """

    def __init__(
        self,
        db: Database,
        queue: JobQueue,
        wake: Callable[[], None] = lambda: None,
        tick_s: float = 2.0,
    ) -> None:
        self.db, self.queue, self.wake = db, queue, wake
        self.tick_s = tick_s
        self._last: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="medloop-dicomweb", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("dicomweb scheduler: tick failed; trying again")
            self._stop.wait(self.tick_s)

    def _outages(self, project_id: str) -> int:
        """Consecutive most recent syncs that found the PACS unreachable."""
        count = 0
        for job in self.queue.list(project_id, limit=50):
            if job.kind != "dicomweb_sync" or not job.finished:
                continue
            if not (job.result or {}).get("pacs_unavailable"):
                break
            count += 1
        return count

    def tick(self, now: float | None = None) -> list[str]:
        """Queue the syncs that are due; returns the projects they were queued for."""
        now = time.monotonic() if now is None else now
        with self.db.read() as s:
            projects = repo_dicom.projects_with_dicomweb(s)
        queued = []
        for project in projects:
            try:
                settings = DicomSettings.load(project.dicom, None).dicomweb
            except MedloopError:
                continue
            if settings is None or not settings.enabled:
                continue
            last = self._last.get(project.id)
            delay = next_delay(settings.poll_interval_s, self._outages(project.id))
            if last is not None and now - last < delay:
                continue
            self._last[project.id] = now
            self.queue.enqueue(
                project.id,
                "dicomweb_sync",
                {"trigger": "poll"},
                coalesce=True,
                not_within_s=delay * 0.9,  # another replica's poll of this interval counts
            )
            queued.append(project.id)
        if queued:
            self.wake()
        return queued
