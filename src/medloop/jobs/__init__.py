"""Durable jobs: the queue interface, its database implementation, the worker and the
distributed mode's dispatcher (Celery itself is imported only by ``celery_app``)."""

from medloop.jobs.dispatch import Dispatcher, queue_of
from medloop.jobs.queue import MAX_ATTEMPTS, JobQueue, JobRecord
from medloop.jobs.scheduler import SyncScheduler
from medloop.jobs.sql_queue import SqlJobQueue
from medloop.jobs.worker import Handler, JobCancelled, JobContext, JobWorker

__all__ = [
    "MAX_ATTEMPTS",
    "Dispatcher",
    "Handler",
    "JobCancelled",
    "JobContext",
    "JobQueue",
    "JobRecord",
    "JobWorker",
    "SqlJobQueue",
    "SyncScheduler",
    "queue_of",
]
