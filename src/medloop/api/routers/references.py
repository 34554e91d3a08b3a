"""``/api/v1/projects/{project}/reference``: reference image + mask pairs (training data).

One pair at a time (multipart ``image``, ``mask``, ``split``, ``group``), or many as a zip
imported by a job (``/import``); listed and counted by split and group; deleted while no
model version trained on them (afterwards only an erasure removes them).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Response, UploadFile, status

from medloop.api.convert import job_out, reference_item_out, reference_out, summary_out
from medloop.api.deps import ServicesDep
from medloop.api.routers._files import chunks, filename
from medloop.api.schemas import ArchiveOut, Page, ReferenceOut, ReferenceSummaryOut
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
    group: Annotated[str | None, Form(max_length=64)] = None,
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
        group,
    )
    acc.note(pair.id, split=split)
    return reference_out(pair)


@router.post("/import", status_code=status.HTTP_202_ACCEPTED)
def import_reference(
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("admin", "reference.import", "reference")],
    file: Annotated[UploadFile, File()],
    split: Annotated[Literal["auto", "train", "val", "test"], Form()] = "auto",
    group: Annotated[str | None, Form(max_length=64)] = None,
) -> ArchiveOut:
    """A zip (``images/`` + ``masks/``, or ``manifest.csv``) imported by a job.

    ``split``: for pairs the zip gives none (``auto``: every 10th by key hash is ``val``);
    ``group``: likewise. The job's result lists every refused pair with its reason.
    """
    job, pairs = svc.imports.submit(
        acc.project, chunks(file), filename(file, "upload.zip"), split, group, acc.who.user_id
    )
    acc.note(job.id, pairs=pairs, archive=job.options.get("filename"))
    return ArchiveOut(job=job_out(job), pairs=pairs)


@router.get("")
def list_reference(
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("viewer", "reference.read", "reference", polled=True)],
    split: str | None = None,
    group: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page:
    """Pairs, oldest first; ``group=`` (empty) lists the pairs without a group."""
    page = svc.references.page(acc.project.id, split, group, limit, offset)
    return Page(items=[reference_item_out(i) for i in page.items], total=page.total)


@router.get("/summary")
def reference_summary(
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("viewer", "reference.read", "reference", polled=True)],
) -> ReferenceSummaryOut:
    return summary_out(svc.references.summary(acc.project.id))


@router.delete("/{pair}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_reference(
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("admin", "reference.delete", "reference", resource="pair")],
    pair: str,
) -> Response:
    """Delete a pair no version trained on (409 otherwise: erase its image instead)."""
    svc.references.delete(acc.project, pair)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
