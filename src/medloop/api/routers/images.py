"""``/api/v1/projects/{project}/images``: content-addressed uploads, their bytes, and an
8-bit windowed rendering for the browser (``/display``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, Response, UploadFile

from medloop.api.convert import image_out
from medloop.api.deps import ServicesDep
from medloop.api.routers._files import chunks, filename
from medloop.api.schemas import ImageOut
from medloop.api.security import ProjectAccess, allow

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/projects/{project}/images", tags=["images"])


@router.post("", responses={201: {"model": ImageOut}})
def upload_image(
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("annotator", "image.create", "image")],
    response: Response,
    file: Annotated[UploadFile, File()],
) -> ImageOut:
    image, created = svc.images.ingest(
        acc.project.id,
        chunks(file),
        filename(file),
        file.content_type or "",
        acc.who.user_id,
        acc.project.settings.max_frames,
    )
    response.status_code = 201 if created else 200
    acc.note(image.id, new=created)
    return image_out(image)


@router.get("/{image}")
def get_image(
    image: str,
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("viewer", "image.read", "image", resource="image")],
) -> ImageOut:
    return image_out(svc.images.get(acc.project.id, image))


@router.get("/{image}/file", response_class=Response)
def download_image(
    image: str,
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("viewer", "image.download", "image", resource="image")],
) -> Response:
    return Response(
        svc.images.file(acc.project.id, image),
        media_type="application/octet-stream",
        headers={"content-disposition": "attachment"},
    )


@router.get("/{image}/display", response_class=Response)
def display_image(
    image: str,
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("viewer", "image.display", "image", resource="image")],
    center: Annotated[
        float | None, Query(allow_inf_nan=False, description="Window centre, in pixel values.")
    ] = None,
    width: Annotated[
        float | None, Query(gt=0, allow_inf_nan=False, description="Window width, in pixel values.")
    ] = None,
) -> Response:
    """The image as an 8-bit RGB PNG, windowed with ``center``/``width`` (or its own window:
    the DICOM window when the file states one, else the 0.5th to 99.5th percentiles).
    The window used and the pixel range come back in ``X-Window-*`` / ``X-Pixel-*``."""
    shown = svc.display.window(acc.project.id, image, center, width)
    acc.note(center=shown.center, width=shown.width)
    return Response(
        shown.png,
        media_type="image/png",
        headers={
            "x-window-center": f"{shown.center:.6g}",
            "x-window-width": f"{shown.width:.6g}",
            "x-pixel-min": f"{shown.pixel_min:.6g}",
            "x-pixel-max": f"{shown.pixel_max:.6g}",
            "x-pixel-dtype": shown.dtype,
        },
    )
