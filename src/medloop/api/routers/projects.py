"""``/api/v1/projects`` and reference pairs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile, status

from medloop.api.convert import project_out
from medloop.api.routers._files import chunks, safe_name
from medloop.api.schemas import Page, ProjectIn, ProjectOut, ReferenceOut
from medloop.api.security import CallerDep, RuntimeDep, audit, audit_failure, project_for, require
from medloop.errors import InputError
from medloop.services.server_data import ingest_image, ingest_reference
from medloop.storage import repositories as repo

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])


@router.get("")
def list_projects(rt: RuntimeDep, who: CallerDep) -> Page:
    with rt.session() as s:
        rows = repo.list_projects(s, None if who.project_id is None else [who.project_id])
    items = [project_out(p, rt.production_version(p.id)) for p in rows]
    return Page(items=items, total=len(items))


@router.post("", status_code=status.HTTP_201_CREATED)
def create_project(body: ProjectIn, rt: RuntimeDep, who: CallerDep) -> ProjectOut:
    require(who, "admin", rt, "project.create")
    values = [lab.value for lab in body.labels]
    if values != list(range(1, len(values) + 1)):
        raise InputError(f"label values must be 1..K in order, got {values}")
    with rt.session() as s:
        p = repo.create_project(
            s,
            name=body.name,
            labels=[lab.model_dump() for lab in body.labels],
            image_kind=body.image_kind,
            learning=body.learning.model_dump(),
        )
    audit(rt, who, "project.create", "project", p.id, p.id)
    return project_out(p, None)


@router.get("/{p}")
def get_project(p: str, rt: RuntimeDep, who: CallerDep) -> ProjectOut:
    project = project_for(rt, who, p, "viewer", "project.read")
    return project_out(project, rt.production_version(project.id))


@router.post("/{p}/reference", status_code=status.HTTP_201_CREATED)
def add_reference(
    p: str,
    rt: RuntimeDep,
    who: CallerDep,
    image: Annotated[UploadFile, File()],
    mask: Annotated[UploadFile, File()],
    split: Annotated[str, Form()] = "train",
) -> ReferenceOut:
    project = project_for(rt, who, p, "annotator", "reference.create")
    if split not in ("train", "val", "test"):
        raise InputError(f"split must be train, val or test, got {split!r}")
    with audit_failure(rt, who, "reference.create", "reference", project.id):
        img, _ = ingest_image(
            rt, project.id, chunks(image), safe_name(image), image.content_type or "", who.user_id
        )
        pair = ingest_reference(rt, project, img, chunks(mask), safe_name(mask, "mask"), split)
    audit(rt, who, "reference.create", "reference", pair.id, project.id, detail={"split": split})
    return ReferenceOut(
        id=pair.id, image_id=pair.image_id, split=pair.split, mask_sha256=pair.mask_sha256
    )


@router.get("/{p}/reference")
def list_reference(p: str, rt: RuntimeDep, who: CallerDep, split: str | None = None) -> Page:
    project = project_for(rt, who, p, "viewer", "reference.read")
    with rt.session() as s:
        rows = repo.list_reference_pairs(s, project.id, split)
    items = [
        ReferenceOut(id=r.id, image_id=r.image_id, split=r.split, mask_sha256=r.mask_sha256)
        for r in rows
    ]
    return Page(items=items, total=len(items))
