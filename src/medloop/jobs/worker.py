"""The job worker: claims jobs from a :class:`~medloop.jobs.queue.JobQueue` and runs them.

A handler is a plain function ``handler(job, ctx) -> dict``; its return value is the
job's result. It reports progress with ``ctx.progress(fraction, line)``, which raises
:class:`JobCancelled` once the job's cancellation was requested, so long loops stop
at their next report. A heartbeat thread keeps the job alive while the handler runs,
even if it reports nothing. Handlers run in the worker's thread, never in an event loop.

A job's log and error are read by every role of its project: what goes there has
server file paths replaced by their last part (:func:`redact_paths`); the server log
keeps the full story.

::

    worker = JobWorker(queue, {"train": train_handler}, heartbeat_s=settings.job_heartbeat_s)
    worker.start()
    ...
    worker.stop(timeout=30)
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from medloop.errors import ConflictError, InputError, MedloopError
from medloop.jobs.queue import JobQueue, JobRecord

__all__ = ["Handler", "JobCancelled", "JobContext", "JobWorker", "redact_paths"]

logger = logging.getLogger(__name__)

_PATH = re.compile(
    r"""(?<![\w:/.~-])(?:~|\.{1,2})?/(?:[^\s'"`,;:()\[\]{}<>/]+/)+([^\s'"`,;:()\[\]{}<>/]*)"""
)


def redact_paths(text: str) -> str:
    """``text`` with absolute file paths cut to their last part (``/srv/data/x.db`` ->
    ``…/x.db``); URLs (``http://host/a/b``) are left alone."""
    return _PATH.sub(lambda m: f"…/{m.group(1)}", text)


class JobCancelled(Exception):
    """Raised inside a handler (by :meth:`JobContext.progress`) when its job must stop."""


class JobContext:
    """What a running handler sees of its job: progress reports and cancellation.

    Args:
        queue: the queue the job came from.
        job: the claimed job.
        min_interval_s: progress reports reach the database at most this often.
    """

    def __init__(self, queue: JobQueue, job: JobRecord, min_interval_s: float) -> None:
        self.job = job
        self._queue = queue
        self._min_interval_s = min_interval_s
        self._state_lock = threading.Lock()
        self._beat_lock = threading.Lock()
        self._progress = 0.0
        self._pending: list[str] = []
        self._last_beat = time.monotonic()
        self._stop = False

    def progress(self, fraction: float, line: str | None = None) -> None:
        """Report progress (0..1) and optionally a log line.

        Raises:
            JobCancelled: cancellation was requested; the handler should clean up and let
                the exception propagate.
        """
        with self._state_lock:
            self._progress = min(1.0, max(0.0, float(fraction)))
            if line:
                self._pending.append(redact_paths(line))
            due = time.monotonic() - self._last_beat >= self._min_interval_s
        if due:
            self.beat()
        if self._stop:
            raise JobCancelled(f"job {self.job.id} was cancelled")

    def log(self, line: str) -> None:
        """Add a log line without changing progress (may raise :class:`JobCancelled`)."""
        self.progress(self._progress, line)

    def cancelled(self) -> bool:
        """Whether the job must stop (cancel requested, or it is no longer ours)."""
        return self._stop

    def beat(self) -> bool:
        """Send a heartbeat now with the latest progress and pending lines; ``True`` = stop."""
        with self._beat_lock:
            with self._state_lock:
                progress, lines = self._progress, self._pending
                self._pending = []
                self._last_beat = time.monotonic()
            try:
                stop = self._queue.heartbeat(
                    self.job.id, progress, "\n".join(lines) or None, attempt=self.job.attempts
                )
            except Exception:
                logger.exception("heartbeat of job %s failed; will retry", self.job.id)
                with self._state_lock:
                    self._pending = lines + self._pending
                return self._stop
            if stop and not self._stop:
                logger.info("job %s: stop requested", self.job.id)
                self._stop = True
        return self._stop


Handler = Callable[[JobRecord, JobContext], Mapping[str, Any] | None]
"""Runs one job: returns its result (a JSON-able mapping) or raises."""


def _message(err: BaseException) -> str:
    if isinstance(err, MedloopError) and str(err):
        return redact_paths(str(err))
    return redact_paths(f"{type(err).__name__}: {err}") if str(err) else type(err).__name__


class JobWorker:
    """Runs queued jobs one at a time in a background thread.

    Args:
        queue: where jobs come from and results go.
        handlers: one handler per job kind; a job of another kind fails.
        heartbeat_s: how often a running job's heartbeat is refreshed.
        poll_s: how long to wait before looking again when the queue is empty.
        worker_id: a name for logs and the job's log tail (default: host and pid).
    """

    def __init__(
        self,
        queue: JobQueue,
        handlers: Mapping[str, Handler],
        heartbeat_s: float = 5.0,
        poll_s: float = 0.5,
        worker_id: str | None = None,
    ) -> None:
        if heartbeat_s <= 0 or poll_s <= 0:
            raise InputError(f"heartbeat_s and poll_s must be > 0, got {heartbeat_s}, {poll_s}")
        self.queue = queue
        self.handlers = dict(handlers)
        self.heartbeat_s = heartbeat_s
        self.poll_s = poll_s
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._current: str | None = None

    @property
    def current_job_id(self) -> str | None:
        """The id of the job running now, if any."""
        return self._current

    @property
    def running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the background thread (no-op if it runs already)."""
        if self.running:
            return
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._loop, name=f"medloop-job-worker-{self.worker_id}", daemon=True
        )
        self._thread.start()

    def wake(self) -> None:
        """Look at the queue now instead of after the poll interval (e.g. after enqueue)."""
        self._wake.set()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop after the current job; wait up to ``timeout`` seconds.

        A job still running when the process exits stays ``running`` and is requeued by
        ``recover`` at the next start.

        Returns:
            Whether the thread has ended.
        """
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _loop(self) -> None:
        logger.info("job worker %s started", self.worker_id)
        while not self._stopping.is_set():
            try:
                ran = self.run_once()
            except Exception:
                logger.exception("job worker %s: queue error; retrying", self.worker_id)
                ran = None
            if ran is None:
                self._wake.wait(self.poll_s)
                self._wake.clear()
        logger.info("job worker %s stopped", self.worker_id)

    def run_once(self) -> JobRecord | None:
        """Claim one job and run it to the end in this thread.

        Returns:
            The job as it ended, or ``None`` if nothing was eligible.
        """
        job = self.queue.claim(self.worker_id)
        if job is None:
            return None
        return self.run_claimed(job)

    def run_claimed(self, job: JobRecord) -> JobRecord:
        """Run a job this worker claimed to its end, in this thread; returns it as it ended."""
        self._current = job.id
        try:
            self._run(job)
        finally:
            self._current = None
        return self.queue.get(job.id)

    def _run(self, job: JobRecord) -> None:
        handler = self.handlers.get(job.kind)
        if handler is None:
            self._finish(job, "fail", f"no handler for job kind {job.kind!r}")
            return
        ctx = JobContext(self.queue, job, min_interval_s=min(1.0, self.heartbeat_s))
        done = threading.Event()

        def keep_alive() -> None:
            while not done.wait(self.heartbeat_s):
                ctx.beat()

        beater = threading.Thread(target=keep_alive, name=f"heartbeat-{job.id}", daemon=True)
        beater.start()
        try:
            result = handler(job, ctx)
        except JobCancelled:
            outcome: tuple[str, Any] = ("cancel", None)
        except Exception as err:
            logger.exception("job %s (%s) failed", job.id, job.kind)
            outcome = ("fail", _message(err))
        else:
            outcome = ("succeed", dict(result or {}))
        finally:
            done.set()
            beater.join()
        ctx.beat()  # flush the last log lines
        self._finish(job, *outcome)

    def _finish(self, job: JobRecord, outcome: str, value: Any) -> None:
        try:
            if outcome == "succeed":
                try:
                    self.queue.succeed(job.id, value, attempt=job.attempts)
                except InputError as err:
                    self.queue.fail(job.id, f"invalid result: {err}", attempt=job.attempts)
            elif outcome == "cancel":
                self.queue.acknowledge_cancel(job.id, attempt=job.attempts)
            else:
                self.queue.fail(job.id, value, attempt=job.attempts)
        except ConflictError as err:
            # The job was recovered and claimed again elsewhere: this attempt's end is moot.
            logger.warning("job %s: %s; outcome %r dropped", job.id, err, outcome)
        else:
            logger.info("job %s (%s): %s", job.id, job.kind, outcome)
