"""The job queue interface and the job record it hands out.

A job is a durable state machine::

    queued ──claim──▶ running ──succeed──▶ succeeded
      │                 │  ├────fail─────▶ failed
      │ cancel          │  └─cancel + acknowledge_cancel─▶ cancelled
      ▼                 │
    cancelled           └─recover (crash)─▶ queued (attempts < 3) or failed ("interrupted")

At most one learning job (``train``/``finetune``) runs per project at a time.
:class:`~medloop.domain.jobs.JobRecord` is the snapshot handed out.
:class:`JobQueue` is the narrow interface services and workers use;
:class:`~medloop.jobs.sql_queue.SqlJobQueue` keeps jobs in the database. In the
distributed mode a broker (Celery on Redis) only carries job ids to the workers
(:mod:`medloop.jobs.dispatch`): the table stays the record.
"""

from __future__ import annotations

import builtins
from typing import Any, Protocol

from medloop.domain.jobs import FINISHED_STATES, JOB_KINDS, JOB_STATES, LEARNING_KINDS, JobRecord

__all__ = [
    "FINISHED_STATES",
    "JOB_KINDS",
    "JOB_STATES",
    "LEARNING_KINDS",
    "MAX_ATTEMPTS",
    "JobQueue",
    "JobRecord",
]

MAX_ATTEMPTS = 3
"""A job interrupted this many times (crashes, kills) fails instead of running again."""


class JobQueue(Protocol):
    """Durable jobs: what services enqueue and workers claim.

    Methods taking ``attempt`` use it as a fencing token: when given, the call applies
    only if the job is still running that attempt (it was not recovered and re-claimed
    by another worker meanwhile).
    """

    def enqueue(
        self,
        project_id: str,
        kind: str,
        options: dict[str, Any] | None = None,
        created_by: str | None = None,
        coalesce: bool = False,
        not_within_s: float | None = None,
    ) -> JobRecord:
        """Add a queued job; with ``coalesce``, return the project's queued job of this kind
        if there is one instead; with ``not_within_s``, return the project's newest job of
        this kind if it was created less than that long ago (periodic work: however many
        processes ask at once, one job per interval).

        ``options`` are validated against the kind's options model
        (:func:`~medloop.domain.jobs.parse_job_spec`) and stored as given; the worker
        reads them back typed through :attr:`JobRecord.spec`. Raises ``InputError`` for
        an unknown kind, ``ConfigError`` for bad options, ``NotFoundError`` for an
        unknown project."""
        ...

    def claim(self, worker_id: str) -> JobRecord | None:
        """Atomically start the oldest eligible queued job, or return ``None``.

        A learning job is not eligible while its project already runs one.
        """
        ...

    def claim_job(self, job_id: str, worker_id: str) -> JobRecord | None:
        """Atomically start the queued job ``job_id`` (a broker delivered its id), or return
        ``None``: it is not queued any more (finished, cancelled, running elsewhere) or it
        is a learning job while its project runs one (the dispatcher sends it again)."""
        ...

    def heartbeat(
        self, job_id: str, progress: float, log_line: str | None = None, attempt: int | None = None
    ) -> bool:
        """Record liveness, progress (0..1) and log lines; ``True`` means *stop*: cancel
        was requested, or the job is no longer this attempt's."""
        ...

    def succeed(self, job_id: str, result: dict[str, Any], attempt: int | None = None) -> JobRecord:
        """Finish a running job with its result (``ConflictError`` if it is not running)."""
        ...

    def fail(self, job_id: str, error: str, attempt: int | None = None) -> JobRecord:
        """Finish a running job as failed (``ConflictError`` if it is not running)."""
        ...

    def acknowledge_cancel(self, job_id: str, attempt: int | None = None) -> JobRecord:
        """A worker stopped a running job on request: mark it cancelled."""
        ...

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued job now, or ask a running one to stop (``ConflictError`` if
        finished)."""
        ...

    def get(self, job_id: str, project_id: str | None = None) -> JobRecord:
        """One job (``NotFoundError`` if unknown or in another project)."""
        ...

    def list(
        self,
        project_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
        state: str | None = None,
    ) -> builtins.list[JobRecord]:
        """Jobs, newest first."""
        ...

    def recover(self, stale_after_s: float) -> builtins.list[str]:
        """Requeue (or fail after ``MAX_ATTEMPTS``) running jobs whose heartbeat is older than
        ``stale_after_s`` (all running jobs with 0); returns their ids."""
        ...

    def depth(self, project_id: str | None = None) -> int:
        """How many jobs are queued."""
        ...
