"""``/api/v1/projects/{p}/images``: content-addressed uploads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Response, UploadFile

from medloop.api.convert import image_out
from medloop.api.routers._files import chunks, safe_name
from medloop.api.schemas import ImageOut
from medloop.api.security import CallerDep, RuntimeDep, audit, audit_failure, project_for
from medloop.services.server_data import ingest_image
from medloop.storage import repositories as repo

router = APIRouter(prefix="/api/v1/projects/{p}/images", tags=["images"])


@router.post("", responses={201: {"model": ImageOut}})
def upload_image(
    p: str, rt: RuntimeDep, who: CallerDep, response: Response, file: Annotated[UploadFile, File()]
) -> ImageOut:
    project = project_for(rt, who, p, "annotator", "image.create")
    with audit_failure(rt, who, "image.create", "image", project.id):
        row, created = ingest_image(
            rt, project.id, chunks(file), safe_name(file), file.content_type or "", who.user_id
        )
    response.status_code = 201 if created else 200
    audit(rt, who, "image.create", "image", row.id, project.id, detail={"new": created})
    return image_out(row)


@router.get("/{i}")
def get_image(p: str, i: str, rt: RuntimeDep, who: CallerDep) -> ImageOut:
    project = project_for(rt, who, p, "viewer", "image.read")
    with rt.session() as s:
        row = repo.get_image(s, i, project.id)
    audit(rt, who, "image.read", "image", i, project.id)
    return image_out(row)


@router.get("/{i}/file", response_class=Response)
def download_image(p: str, i: str, rt: RuntimeDep, who: CallerDep) -> Response:
    project = project_for(rt, who, p, "viewer", "image.read")
    with rt.session() as s:
        row = repo.get_image(s, i, project.id)
    data = rt.blobs.read_bytes(row.blob_key, row.sha256)
    audit(rt, who, "image.download", "image", i, project.id)
    return Response(
        data, media_type="application/octet-stream", headers={"content-disposition": "attachment"}
    )
