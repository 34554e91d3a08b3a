"""``/api/v1/projects``: projects and their settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status

from medloop.api.convert import project_out
from medloop.api.deps import ServicesDep
from medloop.api.schemas import Page, ProjectIn, ProjectOut
from medloop.api.security import Access, ProjectAccess, allow, allow_any

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])


@router.get("")
def list_projects(
    svc: ServicesDep,
    acc: Annotated[Access, allow_any("viewer", "project.list", "project", polled=True)],
) -> Page:
    who = acc.who
    only = None if who.project_id is None else [who.project_id]
    items = [project_out(v) for v in svc.projects.visible(only)]
    return Page(items=items, total=len(items))


@router.post("", status_code=status.HTTP_201_CREATED)
def create_project(
    body: ProjectIn,
    svc: ServicesDep,
    acc: Annotated[Access, allow_any("admin", "project.create", "project", server=True)],
) -> ProjectOut:
    view = svc.projects.create(body.name, body.settings())
    acc.note(view.project.id)
    acc.project_id = view.project.id
    return project_out(view)


@router.get("/{project}")
def get_project(
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("viewer", "project.read", "project", polled=True)],
) -> ProjectOut:
    return project_out(svc.projects.view(acc.project))
