"""``/api/v1/projects/{p}/jobs``: durable train / finetune / evaluate jobs."""

from __future__ import annotations

from fastapi import APIRouter, status

from medloop.api.convert import job_out
from medloop.api.schemas import JobIn, JobOut, Page
from medloop.api.security import CallerDep, RuntimeDep, audit, project_for

router = APIRouter(prefix="/api/v1/projects/{p}/jobs", tags=["jobs"])


@router.post("", status_code=status.HTTP_202_ACCEPTED)
def create_job(p: str, body: JobIn, rt: RuntimeDep, who: CallerDep) -> JobOut:
    project = project_for(rt, who, p, "admin", "job.create")
    job = rt.queue.enqueue(
        project.id, body.kind, body.options, created_by=who.user_id, coalesce=True
    )
    rt.wake_worker()
    audit(rt, who, "job.create", "job", job.id, project.id, detail={"kind": body.kind})
    return job_out(job)


@router.get("")
def list_jobs(p: str, rt: RuntimeDep, who: CallerDep, limit: int = 50) -> Page:
    project = project_for(rt, who, p, "viewer", "job.list")
    items = [job_out(j) for j in rt.queue.list(project.id, limit=min(max(limit, 1), 500))]
    return Page(items=items, total=len(items))


@router.get("/{j}")
def get_job(p: str, j: str, rt: RuntimeDep, who: CallerDep) -> JobOut:
    project = project_for(rt, who, p, "viewer", "job.read")
    return job_out(rt.queue.get(j, project.id))


@router.post("/{j}/cancel")
def cancel_job(p: str, j: str, rt: RuntimeDep, who: CallerDep) -> JobOut:
    project = project_for(rt, who, p, "admin", "job.cancel")
    rt.queue.get(j, project.id)
    job = rt.queue.cancel(j)
    audit(rt, who, "job.cancel", "job", j, project.id)
    return job_out(job)
