"""Celery on Redis as the distributed job engine: it carries job ids, never job state.

One task, ``medloop.run_job(job_id)``: the worker claims that row of the jobs table
and runs it with the same handlers as the embedded worker. The configuration is the
one a long, expensive job needs:

- ``acks_late`` + ``reject_on_worker_lost``: a message is acknowledged only once its
  job has ended, so a worker process that dies mid-job gives it back; a whole worker
  lost (``kill -9``, a lost machine) is caught by the dispatcher's heartbeat check
  (:mod:`medloop.jobs.dispatch`), which re-queues the job to resume from its checkpoint;
- ``worker_prefetch_multiplier=1``: a worker holds no message it is not running;
- no result backend: results are in the jobs table.

The app is built by :func:`make_celery`; nothing here connects to Redis at import,
and the runner (the runtime, its database and models) is built inside the worker
process on the first task, never before a fork.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from medloop.jobs.dispatch import DEFAULT_QUEUE, QUEUES, queue_of
from medloop.jobs.queue import JobRecord

__all__ = ["TASK", "CelerySender", "make_celery", "worker_argv"]

log = logging.getLogger(__name__)

TASK = "medloop.run_job"

Runner = Callable[[str], None]
"""Claims and runs one job by id (built once per worker process)."""


def make_celery(
    broker_url: str,
    runner_factory: Callable[[], Runner] | None = None,
    visibility_timeout_s: float = 3600.0,
) -> Any:
    """The Celery app on ``broker_url``.

    Args:
        broker_url: ``redis://host:port/db``.
        runner_factory: builds the job runner in a worker process (``None`` in API
            replicas, which only send).
        visibility_timeout_s: an unacknowledged message is delivered again after this
            long (a duplicate is harmless: the row can be claimed once).
    """
    from celery import Celery

    app = Celery("medloop", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=DEFAULT_QUEUE,
        task_create_missing_queues=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options={
            "visibility_timeout": visibility_timeout_s,
            "socket_connect_timeout": 2,
            "socket_timeout": 10,
        },
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    runners: dict[int, Runner] = {}
    lock = threading.Lock()

    def runner() -> Runner:
        if runner_factory is None:
            raise RuntimeError("this process only sends jobs; run `medloop worker`")
        with lock:  # one runtime per process (a prefork child builds its own)
            pid = os.getpid()
            if pid not in runners:
                runners[pid] = runner_factory()
            return runners[pid]

    @app.task(name=TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def run_job(job_id: str) -> None:
        runner()(job_id)

    return app


class CelerySender:
    """Publishes job ids on their queues (what :class:`~medloop.jobs.dispatch.Dispatcher`
    calls). Raises when the broker cannot be reached within a few seconds."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, job: JobRecord) -> None:
        self.app.send_task(
            TASK,
            args=[job.id],
            queue=queue_of(job.kind),
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0.2, "interval_step": 0.5},
        )

    def close(self) -> None:
        self.app.close()


def worker_argv(queues: list[str], concurrency: int, name: str) -> list[str]:
    """``celery worker`` arguments: one job at a time per process, ``solo`` for one.

    Raises:
        ValueError: an unknown queue or a concurrency below 1.
    """
    unknown = sorted(set(queues) - set(QUEUES))
    if unknown or not queues:
        raise ValueError(f"queues must be among {', '.join(QUEUES)}, got {', '.join(queues)}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    return [
        "worker",
        f"--queues={','.join(queues)}",
        f"--concurrency={concurrency}",
        f"--pool={'solo' if concurrency == 1 else 'prefork'}",
        f"--hostname={name}@%h",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        "--prefetch-multiplier=1",
    ]
