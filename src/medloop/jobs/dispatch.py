"""The distributed mode's dispatcher: the jobs table is the record, the broker carries ids.

A job is queued as a row, as in the embedded mode. :class:`Dispatcher` (a thread in
every API replica) then sends its id to the broker, on the Celery queue of its kind
(:func:`queue_of`); a ``medloop worker`` receives the id, claims that row
(:meth:`~medloop.jobs.queue.JobQueue.claim_job`) and runs it. Every ``tick_s`` the
dispatcher also

- re-queues running jobs whose heartbeat is older than ``stale_s`` (their worker
  died: ``kill -9``, a lost machine); a learning job then resumes from its checkpoint;
- sends again every queued job it has not sent for ``resend_s`` (the broker lost it:
  Redis restarted; or a worker dropped it because its project's learning job ran).

A message may so arrive twice; only one claim of a queued row succeeds, and the
other delivery is dropped, so a job never runs twice. Sending fails quietly while
the broker is down: the row stays queued and is sent once the broker is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from medloop.jobs.queue import JobQueue, JobRecord

__all__ = ["DEFAULT_QUEUE", "QUEUES", "Dispatcher", "queue_of"]

log = logging.getLogger(__name__)

QUEUES = ("train", "analyze", "dicom")
"""The Celery queues: learning jobs, batch analysis and evaluation, DICOMweb syncs."""
DEFAULT_QUEUE = "analyze"
_QUEUE_OF_KIND = {
    "train": "train",
    "finetune": "train",
    "evaluate": "analyze",
    "dicomweb_sync": "dicom",
}
_SCAN = 500


def queue_of(kind: str) -> str:
    """The Celery queue that carries jobs of ``kind`` (:data:`DEFAULT_QUEUE` for others)."""
    return _QUEUE_OF_KIND.get(kind, DEFAULT_QUEUE)


class Dispatcher:
    """Sends queued jobs' ids to the broker, and again when it may have lost them.

    Args:
        queue: the jobs table.
        send: publishes one job's id on its queue (raises when the broker is down).
        stale_s: a running job whose heartbeat is older than this is re-queued.
        resend_s: a queued job is sent again after this long.
        tick_s: how often to look.
    """

    def __init__(
        self,
        queue: JobQueue,
        send: Callable[[JobRecord], None],
        stale_s: float,
        resend_s: float,
        tick_s: float = 1.0,
    ) -> None:
        self.queue, self.send = queue, send
        self.stale_s, self.resend_s, self.tick_s = stale_s, resend_s, tick_s
        self._sent: dict[str, float] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="medloop-dispatch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        """Look now (a job was just queued) instead of at the next tick."""
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("dispatcher: tick failed; trying again")
            self._wake.wait(self.tick_s)
            self._wake.clear()

    def tick(self, now: float | None = None) -> list[str]:
        """Re-queue dead workers' jobs, send what is due; returns the ids sent."""
        now = time.monotonic() if now is None else now
        recovered = set(self.queue.recover(self.stale_s))
        queued = self.queue.list(state="queued", limit=_SCAN)
        live = {job.id for job in queued}
        self._sent = {k: t for k, t in self._sent.items() if k in live}
        sent = []
        for job in reversed(queued):  # oldest first
            last = self._sent.get(job.id)
            if job.id not in recovered and last is not None and now - last < self.resend_s:
                continue
            try:
                self.send(job)
            except Exception as err:
                log.warning("broker unreachable, job %s stays queued: %s", job.id, err)
                break  # the next tick tries again
            self._sent[job.id] = now
            sent.append(job.id)
        self.sent += len(sent)
        return sent
