"""Durable jobs: the queue interface, its database implementation and the worker."""

from medloop.jobs.queue import MAX_ATTEMPTS, JobQueue, JobRecord
from medloop.jobs.scheduler import SyncScheduler
from medloop.jobs.sql_queue import SqlJobQueue
from medloop.jobs.worker import Handler, JobCancelled, JobContext, JobWorker

__all__ = [
    "MAX_ATTEMPTS",
    "Handler",
    "JobCancelled",
    "JobContext",
    "JobQueue",
    "JobRecord",
    "JobWorker",
    "SqlJobQueue",
    "SyncScheduler",
]
