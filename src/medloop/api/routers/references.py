"""``/api/v1/projects/{project}/reference``: reference image + mask pairs (training data)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile, status

from medloop.api.convert import reference_out
from medloop.api.deps import ServicesDep
from medloop.api.routers._files import chunks, filename
from medloop.api.schemas import Page, ReferenceOut
from medloop.api.security import ProjectAccess, allow

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/projects/{project}/reference", tags=["reference"])


@router.post("", status_code=status.HTTP_201_CREATED)
def add_reference(
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("annotator", "reference.create", "reference")],
    image: Annotated[UploadFile, File()],
    mask: Annotated[UploadFile, File()],
    split: Annotated[str, Form()] = "train",
) -> ReferenceOut:
    pair = svc.references.add(
        acc.project,
        chunks(image),
        filename(image),
        image.content_type or "",
        chunks(mask),
        filename(mask, "mask"),
        split,
        acc.who.user_id,
    )
    acc.note(pair.id, split=split)
    return reference_out(pair)


@router.get("")
def list_reference(
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("viewer", "reference.read", "reference", polled=True)],
    split: str | None = None,
) -> Page:
    items = [reference_out(r) for r in svc.references.recent(acc.project.id, split)]
    return Page(items=items, total=len(items))
