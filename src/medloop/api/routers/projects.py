"""``/api/v1/projects``: projects, their settings (changed with before and after in the audit
trail) and their archive."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status

from medloop.api.convert import project_out
from medloop.api.deps import ServicesDep
from medloop.api.schemas import Page, ProjectIn, ProjectOut, ProjectPatch
from medloop.api.security import Access, ProjectAccess, allow, allow_any

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])


@router.get("")
def list_projects(
    svc: ServicesDep,
    acc: Annotated[Access, allow_any("viewer", "project.list", "project", polled=True)],
    archived: bool = False,
) -> Page:
    """The projects the caller may see; ``?archived=true``: the archived ones instead."""
    who = acc.who
    only = None if who.project_id is None else [who.project_id]
    items = [project_out(v) for v in svc.projects.visible(only, archived)]
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


@router.patch("/{project}")
def update_project(
    body: ProjectPatch,
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("admin", "project.update", "project", resource="project")],
) -> ProjectOut:
    """Change settings (a JSON merge patch); the next job uses them, a running one does not."""
    change = svc.projects.update(acc.project, body.patch())
    acc.note(acc.project.id, changes=change.changes)
    return project_out(change.view)


@router.post("/{project}/archive")
def archive_project(
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("admin", "project.archive", "project", resource="project")],
) -> ProjectOut:
    """Make the project read-only and leave it out of the project list."""
    acc.note(acc.project.id)
    return project_out(svc.projects.archive(acc.project, True))


@router.post("/{project}/restore")
def restore_project(
    svc: ServicesDep,
    acc: Annotated[
        ProjectAccess,
        allow("admin", "project.restore", "project", resource="project", archived=True),
    ],
) -> ProjectOut:
    """Bring an archived project back."""
    acc.note(acc.project.id)
    return project_out(svc.projects.archive(acc.project, False))
