"""Jobs of a project: submit (typed and validated first), list, look up, cancel.

A job's options are checked twice before anything is queued: against its kind's
options model (bad values answer 422 at the API) and, merged with the project's
settings, against the settings' own rules (e.g. a patch size the network depth
cannot take), so a queued job never fails for its options.
"""

from __future__ import annotations

from collections.abc import Callable

from medloop.domain.jobs import AnyJob, FinetuneJob, JobRecord, TrainJob
from medloop.domain.records import ProjectRecord
from medloop.errors import ConflictError
from medloop.jobs.queue import JobQueue

__all__ = ["JobService"]


class JobService:
    """The job queue as a project's services see it.

    Args:
        queue: the durable queue.
        wake: called after a job is queued (wakes an idle in-process worker).
    """

    def __init__(self, queue: JobQueue, wake: Callable[[], None] = lambda: None) -> None:
        self.queue, self.wake = queue, wake

    def submit(
        self,
        project: ProjectRecord,
        spec: AnyJob,
        created_by: str | None = None,
        *,
        coalesce: bool = True,
    ) -> JobRecord:
        """Queue ``spec`` for ``project``; with ``coalesce``, a queued job of the kind absorbs it.

        Raises:
            InvalidSettings: the options clash with the project's settings (API: 422).
        """
        if isinstance(spec, TrainJob):
            spec.options.apply(project.settings.training)
        elif isinstance(spec, FinetuneJob):
            spec.options.apply(project.settings.learning)
        options = spec.options.model_dump(mode="json", exclude_unset=True)
        job = self.queue.enqueue(project.id, spec.kind, options, created_by, coalesce)
        self.wake()
        return job

    def recent(self, project_id: str, limit: int = 50) -> list[JobRecord]:
        """The project's jobs, newest first."""
        return self.queue.list(project_id, limit=min(max(limit, 1), 500))

    def get(self, project_id: str, job_id: str) -> JobRecord:
        """One job of the project (``NotFoundError`` otherwise)."""
        return self.queue.get(job_id, project_id)

    def cancel(self, project_id: str, job_id: str) -> JobRecord:
        """Cancel a queued job, or ask a running one to stop.

        Raises:
            ConflictError: an erasure (once requested, it is carried out).
        """
        job = self.queue.get(job_id, project_id)
        if job.kind == "erasure":
            raise ConflictError("an erasure cannot be cancelled once requested")
        return self.queue.cancel(job_id)
