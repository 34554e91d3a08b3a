"""``/api/v1/projects/{project}/jobs``: durable train / finetune / evaluate jobs.

The body is a :data:`~medloop.domain.jobs.JobSpec`: ``{"kind", "options"}`` with the
options typed per kind, so ``{"steps": -5}`` or ``{"patch_size": 100000}`` answer 422
and nothing is queued. Reading the job list and a job is audited as a polled read (the
browser and the SDK poll them).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from medloop.api.convert import curve_out, job_out
from medloop.api.deps import ServicesDep
from medloop.api.schemas import CurveOut, JobIn, JobOut, Page
from medloop.api.security import ProjectAccess, allow

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/projects/{project}/jobs", tags=["jobs"])


@router.post("", status_code=status.HTTP_202_ACCEPTED)
def create_job(
    body: JobIn,
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("admin", "job.create", "job")],
) -> JobOut:
    acc.note(kind=body.kind)
    job = svc.jobs.submit(acc.project, body, acc.who.user_id)
    acc.note(job.id)
    return job_out(job)


@router.get("")
def list_jobs(
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("viewer", "job.list", "job", polled=True)],
    limit: int = 50,
) -> Page:
    items = [job_out(j) for j in svc.jobs.recent(acc.project.id, limit)]
    return Page(items=items, total=len(items))


@router.get("/{job}")
def get_job(
    job: str,
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("viewer", "job.read", "job", resource="job", polled=True)],
) -> JobOut:
    return job_out(svc.jobs.get(acc.project.id, job))


@router.get("/{job}/curve")
def job_curve(
    job: str,
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("viewer", "job.read", "job", resource="job", polled=True)],
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> CurveOut:
    """The loss and validation Dice a learning job reported, by step (``after``: newer only)."""
    return curve_out(svc.curves.points(acc.project.id, job, after), after)


@router.post("/{job}/cancel")
def cancel_job(
    job: str,
    svc: ServicesDep,
    acc: Annotated[
        ProjectAccess, allow("admin", "job.cancel", "job", resource="job", archived=True)
    ],
) -> JobOut:
    return job_out(svc.jobs.cancel(acc.project.id, job))
