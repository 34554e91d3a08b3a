"""The job queue kept in the database (SQLite or PostgreSQL).

Every state change is one short transaction. ``claim`` is atomic: on SQLite the
transaction starts with ``BEGIN IMMEDIATE`` (one writer at a time); on PostgreSQL the
candidate row is taken with ``SELECT ... FOR UPDATE SKIP LOCKED`` and, for a learning
job, the project row is locked before checking that no other learning job runs. A
partial unique index on ``jobs`` backs the one-learning-job-per-project rule.
"""

from __future__ import annotations

import builtins
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Exists, and_, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from medloop.domain.jobs import JOB_KINDS, JOB_STATES, LEARNING_KINDS, parse_job_spec
from medloop.errors import ConflictError, InputError, NotFoundError
from medloop.jobs.queue import MAX_ATTEMPTS, JobRecord
from medloop.storage._repo_base import check_choice, lock_project, page
from medloop.storage.db import SQLITE_BEGIN_OPTION
from medloop.storage.mapping import job_record
from medloop.storage.models import Job, utcnow

__all__ = ["SqlJobQueue"]

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 50
_MAX_LINE = 500
_MAX_ERROR = 4000
_CLAIM_TRIES = 8


def _json_copy(name: str, value: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(f"job {name} must be a JSON object, got {type(value).__name__}")
    try:
        copied: dict[str, Any] = json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise InputError(f"job {name} must be JSON-serialisable: {err}") from err
    return copied


def _append_log(job: Job, text: str, now: datetime) -> None:
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    new = [f"{stamp} {line[:_MAX_LINE]}" for line in text.splitlines() if line.strip()]
    if new:
        lines = (job.log_tail.splitlines() if job.log_tail else []) + new
        job.log_tail = "\n".join(lines[-LOG_TAIL_LINES:])


def _is_learning_running(project_id: str) -> Exists:
    return exists().where(
        Job.project_id == project_id, Job.state == "running", Job.kind.in_(LEARNING_KINDS)
    )


class SqlJobQueue:
    """A :class:`~medloop.jobs.queue.JobQueue` on the medloop database.

    Args:
        sessions: a session factory from :func:`medloop.storage.db.session_factory`.
        max_attempts: interruptions after which :meth:`recover` fails a job.
    """

    def __init__(self, sessions: sessionmaker[Session], max_attempts: int = MAX_ATTEMPTS) -> None:
        self._sessions = sessions
        self._max_attempts = max_attempts

    @contextmanager
    def _transaction(self, begin: str = "IMMEDIATE") -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            session.connection(execution_options={SQLITE_BEGIN_OPTION: begin})
            yield session

    def _sqlite(self, session: Session) -> bool:
        return session.get_bind().dialect.name == "sqlite"

    def _job(self, session: Session, job_id: str) -> Job:
        job = session.get(Job, job_id, with_for_update=not self._sqlite(session))
        if job is None:
            raise NotFoundError(f"job {job_id!r} not found")
        return job

    def _running(self, session: Session, job_id: str, attempt: int | None) -> Job:
        job = self._job(session, job_id)
        if job.state != "running" or (attempt is not None and job.attempts != attempt):
            raise ConflictError(
                f"job {job_id!r} is {job.state} (attempt {job.attempts}), not running"
                + ("" if attempt is None else f" attempt {attempt}")
            )
        return job

    # -- producers -------------------------------------------------------------------------

    def enqueue(
        self,
        project_id: str,
        kind: str,
        options: dict[str, Any] | None = None,
        created_by: str | None = None,
        coalesce: bool = False,
        not_within_s: float | None = None,
    ) -> JobRecord:
        """See :meth:`JobQueue.enqueue`."""
        check_choice("job kind", kind, JOB_KINDS)
        opts = _json_copy("options", options or {})
        parse_job_spec(kind, opts)  # ConfigError names the bad option
        with self._transaction() as session:
            lock_project(session, project_id)
            if not_within_s:
                # Decided under the project's lock: replicas asking at once queue one job.
                since = utcnow() - timedelta(seconds=not_within_s)
                recent = session.scalars(
                    select(Job)
                    .where(Job.project_id == project_id, Job.kind == kind, Job.created_at > since)
                    .order_by(Job.created_at.desc(), Job.id)
                    .limit(1)
                ).first()
                if recent is not None:
                    return job_record(recent)
            if coalesce:
                waiting = session.scalars(
                    select(Job)
                    .where(Job.project_id == project_id, Job.kind == kind, Job.state == "queued")
                    .order_by(Job.created_at, Job.id)
                    .limit(1)
                ).first()
                if waiting is not None:
                    return job_record(waiting)
            job = Job(
                project_id=project_id,
                kind=kind,
                state="queued",
                options=opts,
                log_tail="",
                created_by=created_by,
            )
            _append_log(job, f"queued ({kind})", utcnow())
            session.add(job)
            session.flush()
            return job_record(job)

    def cancel(self, job_id: str) -> JobRecord:
        """See :meth:`JobQueue.cancel`."""
        with self._transaction() as session:
            job = self._job(session, job_id)
            now = utcnow()
            if job.state == "queued":
                job.state = "cancelled"
                job.finished_at = now
                _append_log(job, "cancelled before it started", now)
            elif job.state == "running":
                if not job.cancel_requested:
                    job.cancel_requested = True
                    _append_log(job, "cancel requested", now)
            else:
                raise ConflictError(f"job {job_id!r} already {job.state}: nothing to cancel")
            session.flush()
            return job_record(job)

    # -- workers ---------------------------------------------------------------------------

    def claim(self, worker_id: str) -> JobRecord | None:
        """See :meth:`JobQueue.claim`."""
        return self._claim(worker_id, self._pick)

    def claim_job(self, job_id: str, worker_id: str) -> JobRecord | None:
        """See :meth:`JobQueue.claim_job`."""

        def pick(session: Session) -> Job | None:
            job = session.get(Job, job_id, with_for_update=not self._sqlite(session))
            if job is None or job.state != "queued":
                return None
            if job.kind in LEARNING_KINDS:
                lock_project(session, job.project_id)  # serialise learning claims per project
                if session.scalar(select(_is_learning_running(job.project_id))):
                    return None
            return job

        return self._claim(worker_id, pick)

    def _claim(self, worker_id: str, pick: Callable[[Session], Job | None]) -> JobRecord | None:
        try:
            with self._transaction() as session:
                job = pick(session)
                if job is None:
                    return None
                now = utcnow()
                job.state = "running"
                job.attempts += 1
                job.progress = 0.0
                job.started_at = now
                job.heartbeat_at = now
                _append_log(job, f"attempt {job.attempts} started", now)  # no host names
                session.flush()
                record = job_record(job)
        except IntegrityError:
            # The one-learning-job index refused a claim that raced another (PostgreSQL).
            logger.info("claim by %s lost a race; will retry", worker_id)
            return None
        logger.info(
            "%s claimed job %s (%s, attempt %d)", worker_id, record.id, record.kind, record.attempts
        )
        return record

    def _pick(self, session: Session) -> Job | None:
        sqlite = self._sqlite(session)
        busy = select(Job.project_id).where(Job.state == "running", Job.kind.in_(LEARNING_KINDS))
        skipped: set[str] = set()
        for _ in range(_CLAIM_TRIES):
            query = select(Job).where(
                Job.state == "queued",
                ~and_(Job.kind.in_(LEARNING_KINDS), Job.project_id.in_(busy)),
            )
            if skipped:
                query = query.where(Job.id.not_in(skipped))
            query = query.order_by(Job.created_at, Job.id).limit(1)
            if not sqlite:
                query = query.with_for_update(skip_locked=True, of=Job)
            job = session.scalars(query).first()
            if job is None or sqlite or job.kind not in LEARNING_KINDS:
                return job
            # PostgreSQL: serialise learning claims per project, then look again.
            lock_project(session, job.project_id)
            if not session.scalar(select(_is_learning_running(job.project_id))):
                return job
            skipped.add(job.id)
        return None

    def heartbeat(
        self, job_id: str, progress: float, log_line: str | None = None, attempt: int | None = None
    ) -> bool:
        """See :meth:`JobQueue.heartbeat`."""
        with self._transaction() as session:
            job = self._job(session, job_id)
            if job.state != "running" or (attempt is not None and job.attempts != attempt):
                return True
            now = utcnow()
            job.heartbeat_at = now
            job.progress = min(1.0, max(0.0, float(progress)))
            if log_line:
                _append_log(job, log_line, now)
            return bool(job.cancel_requested)

    def succeed(self, job_id: str, result: dict[str, Any], attempt: int | None = None) -> JobRecord:
        """See :meth:`JobQueue.succeed`."""
        payload = _json_copy("result", result)
        with self._transaction() as session:
            job = self._running(session, job_id, attempt)
            now = utcnow()
            job.state = "succeeded"
            job.progress = 1.0
            job.result = payload
            job.finished_at = job.heartbeat_at = now
            _append_log(job, "succeeded", now)
            session.flush()
            return job_record(job)

    def fail(self, job_id: str, error: str, attempt: int | None = None) -> JobRecord:
        """See :meth:`JobQueue.fail`."""
        with self._transaction() as session:
            job = self._running(session, job_id, attempt)
            now = utcnow()
            job.state = "failed"
            job.error = (error or "failed")[:_MAX_ERROR]
            job.finished_at = job.heartbeat_at = now
            _append_log(job, f"failed: {job.error}", now)
            session.flush()
            return job_record(job)

    def acknowledge_cancel(self, job_id: str, attempt: int | None = None) -> JobRecord:
        """See :meth:`JobQueue.acknowledge_cancel`."""
        with self._transaction() as session:
            job = self._running(session, job_id, attempt)
            now = utcnow()
            job.state = "cancelled"
            job.finished_at = job.heartbeat_at = now
            _append_log(job, "cancelled", now)
            session.flush()
            return job_record(job)

    def recover(self, stale_after_s: float) -> builtins.list[str]:
        """See :meth:`JobQueue.recover`. Call at start, before workers claim."""
        with self._transaction() as session:
            now = utcnow()
            query = select(Job).where(Job.state == "running")
            if stale_after_s > 0:
                cutoff = now - timedelta(seconds=stale_after_s)
                query = query.where((Job.heartbeat_at.is_(None)) | (Job.heartbeat_at < cutoff))
            if not self._sqlite(session):
                query = query.with_for_update(skip_locked=True)
            affected: builtins.list[str] = []
            for job in session.scalars(query.order_by(Job.created_at, Job.id)):
                job.heartbeat_at = None
                if job.cancel_requested:
                    job.state = "cancelled"
                    job.finished_at = now
                    _append_log(job, "interrupted after cancel was requested: cancelled", now)
                elif job.attempts < self._max_attempts:
                    job.state = "queued"
                    job.progress = 0.0
                    _append_log(job, f"interrupted during attempt {job.attempts}: queued", now)
                else:
                    job.state = "failed"
                    job.error = "interrupted"
                    job.finished_at = now
                    _append_log(job, f"interrupted {job.attempts} times: failed", now)
                affected.append(job.id)
            if affected:
                logger.warning("recovered %d interrupted job(s): %s", len(affected), affected)
            return affected

    # -- readers ---------------------------------------------------------------------------

    def get(self, job_id: str, project_id: str | None = None) -> JobRecord:
        """See :meth:`JobQueue.get`."""
        with self._transaction("DEFERRED") as session:
            job = session.get(Job, job_id)
            if job is None or (project_id is not None and job.project_id != project_id):
                where = f" in project {project_id!r}" if project_id is not None else ""
                raise NotFoundError(f"job {job_id!r} not found{where}")
            return job_record(job)

    def list(
        self,
        project_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
        state: str | None = None,
    ) -> builtins.list[JobRecord]:
        """See :meth:`JobQueue.list`."""
        limit, offset = page(limit, offset)
        query = select(Job)
        if project_id is not None:
            query = query.where(Job.project_id == project_id)
        if state is not None:
            query = query.where(Job.state == check_choice("job state", state, JOB_STATES))
        query = query.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
        with self._transaction("DEFERRED") as session:
            return [job_record(job) for job in session.scalars(query)]

    def depth(self, project_id: str | None = None) -> int:
        """See :meth:`JobQueue.depth`."""
        query = select(func.count()).select_from(Job).where(Job.state == "queued")
        if project_id is not None:
            query = query.where(Job.project_id == project_id)
        with self._transaction("DEFERRED") as session:
            return int(session.scalar(query) or 0)
