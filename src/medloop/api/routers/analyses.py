"""``/api/v1/projects/{project}/analyses``: analyses, their label maps, overlays and DICOM
SEG, and the review queue.

Model work never runs on the event loop: analyses run in the analysis service's
executor (uploads are streamed into the blob store there too).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, Response, UploadFile, status
from fastapi.responses import StreamingResponse
from starlette.datastructures import UploadFile as StarletteUpload

from medloop.api.bodies import parse_json
from medloop.api.convert import analysis_out, image_out
from medloop.api.deps import ServicesDep
from medloop.api.routers._files import chunks, filename, label_response
from medloop.api.schemas import AnalysisOut, AnalyzeRequest, Page, ReviewItemOut
from medloop.api.security import ProjectAccess, allow
from medloop.domain.records import AnalysisRecord
from medloop.errors import InputError

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/projects/{project}", tags=["analyses"])
MAX_PARTS = 10_000
"""Files one multipart analysis may carry (a DICOM series; the project's ``max_frames``
bounds it further)."""

_UPLOAD_BODY = {
    "requestBody": {
        "content": {
            "application/json": {"schema": AnalyzeRequest.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
        "required": True,
    }
}


@router.post("/analyses", status_code=status.HTTP_201_CREATED, openapi_extra=_UPLOAD_BODY)
async def create_analysis(
    request: Request,
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("annotator", "analysis.create", "analysis")],
) -> AnalysisOut:
    """Analyse a stored image (JSON ``{"image_id"}``) or upload and analyse (multipart ``file``;
    several ``file`` parts, or one zip, are the instances of a DICOM series: 3D projects)."""
    ctype = request.headers.get("content-type", "")
    user = acc.who.user_id
    analyses = svc.analyses
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_files=MAX_PARTS)
        uploads = [u for u in form.getlist("file") if isinstance(u, StarletteUpload)]
        if not uploads:
            raise InputError("multipart analysis needs a 'file' field with the image")
        if len(uploads) > 1:  # the instances of a DICOM series
            parts = [(filename(u), chunks(u)) for u in uploads]
            run = functools.partial(analyses.create_series, acc.project, parts, user)
        else:
            upload = uploads[0]
            run = functools.partial(
                analyses.create_upload,
                acc.project,
                chunks(upload),
                filename(upload),
                upload.content_type or "",
                user,
            )
    elif ctype.startswith("application/json"):
        body = parse_json(await request.body(), AnalyzeRequest, '{"image_id": ...}')
        run = functools.partial(analyses.create_for, acc.project, body.image_id, body.version, user)
    else:
        raise InputError("send JSON {\"image_id\": ...} or multipart with a 'file' field")
    analysis: AnalysisRecord = await asyncio.wrap_future(analyses.submit(user, run))
    acc.note(analysis.id, version=analysis.model_version)
    return analysis_out(analysis, False)


@router.get("/analyses")
def list_analyses(
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("viewer", "analysis.list", "analysis")],
    limit: int = 50,
    offset: int = 0,
) -> Page:
    views = svc.analyses.recent(acc.project.id, limit, offset)
    acc.note(count=len(views))
    return Page(items=[analysis_out(v.analysis, v.corrected) for v in views])


@router.get("/analyses/{analysis}")
def get_analysis(
    analysis: str,
    svc: ServicesDep,
    acc: Annotated[
        ProjectAccess, allow("viewer", "analysis.read", "analysis", resource="analysis")
    ],
) -> AnalysisOut:
    view = svc.analyses.get(acc.project.id, analysis)
    return analysis_out(view.analysis, view.corrected)


@router.get("/analyses/{analysis}/mask", response_class=Response)
def get_mask(
    analysis: str,
    svc: ServicesDep,
    acc: Annotated[
        ProjectAccess, allow("viewer", "analysis.mask", "analysis", resource="analysis")
    ],
) -> Response:
    """The label map as stored: an 8-bit gray PNG (2D) or a gzipped NIfTI (a volume, on
    the uploaded volume's grid and affine)."""
    return label_response(svc.analyses.mask(acc.project.id, analysis))


@router.get("/analyses/{analysis}/slice", response_class=Response)
def get_slice(
    analysis: str,
    svc: ServicesDep,
    acc: Annotated[
        ProjectAccess, allow("viewer", "analysis.slice", "analysis", resource="analysis")
    ],
    plane: str = "axial",
    index: int = 0,
    kind: str = "overlay",
    window: str | None = None,
) -> Response:
    """One slice of a volume analysis as a PNG (``kind``: image, overlay or mask; ``plane``:
    axial, coronal or sagittal; ``window``: auto, a CT preset or ``center,width``). The
    plane's slice count, the pixel spacing (row, col mm) and the window come back in headers."""
    shown = svc.display.slice(acc.project, analysis, plane, index, kind, window)
    headers = {"x-slice-count": str(shown.count)}
    if shown.spacing_mm is not None:
        headers["x-pixel-spacing"] = ",".join(f"{s:.6g}" for s in shown.spacing_mm)
    if shown.center is not None and shown.width is not None:
        headers["x-window-center"] = f"{shown.center:.6g}"
        headers["x-window-width"] = f"{shown.width:.6g}"
    return Response(shown.png, media_type="image/png", headers=headers)


@router.get(
    "/analyses/{analysis}/voxels",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/gzip": {}}}},
)
def get_voxels(
    analysis: str,
    svc: ServicesDep,
    acc: Annotated[
        ProjectAccess, allow("viewer", "analysis.voxels", "analysis", resource="analysis")
    ],
    kind: str = "image",
) -> StreamingResponse:
    """A volume analysis's whole image (``kind=image``: int16 or float32) or label volume
    (``labels``: uint8), raw little-endian voxels of the canonical RAS+ array with x
    varying fastest, gzip-compressed (not a Content-Encoding: the client inflates it).
    Shape, dtype, spacing and the volume's own window come back in ``x-volume-*`` and
    ``x-window-*`` headers."""
    stream = svc.display.voxels(acc.project, analysis, kind)
    return StreamingResponse(stream.chunks, media_type="application/gzip", headers=stream.headers())


@router.post("/analyses/{analysis}/interpolate", response_class=Response)
def interpolate(
    analysis: str,
    svc: ServicesDep,
    acc: Annotated[
        ProjectAccess, allow("annotator", "analysis.interpolate", "analysis", resource="analysis")
    ],
    file: Annotated[UploadFile, File(description="The edited slices' masks, gzip'd uint8.")],
    plane: Annotated[str, Form()],
    indices: Annotated[str, Form(description="The edited slices' numbers, e.g. 3,10,17.")],
) -> Response:
    """Shape-based interpolation of one label between edited slices of one plane: ``file``
    holds their 0/1 masks (``(n, rows, cols)`` uint8 in the slice route's orientation,
    gzip'd); the answer holds the slices between them the same way, their numbers in
    ``x-slice-indices``. Nothing is stored."""
    out = svc.display.interpolate(acc.project, analysis, plane, indices, chunks(file))
    headers = {"x-slice-indices": ",".join(str(i) for i in out.indices)}
    return Response(out.gzip, media_type="application/gzip", headers=headers)


@router.get("/analyses/{analysis}/overlay", response_class=Response)
def get_overlay(
    analysis: str,
    svc: ServicesDep,
    acc: Annotated[
        ProjectAccess, allow("viewer", "analysis.overlay", "analysis", resource="analysis")
    ],
) -> Response:
    return Response(svc.display.overlay(acc.project, analysis), media_type="image/png")


@router.get(
    "/analyses/{analysis}/seg",
    response_class=Response,
    responses={200: {"content": {"application/dicom": {}}}},
)
def get_seg(
    analysis: str,
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("viewer", "analysis.seg", "analysis", resource="analysis")],
) -> Response:
    """The analysis as DICOM SEG (409 if the analysed image is not DICOM)."""
    return Response(
        svc.seg.analysis_seg(acc.project, analysis),
        media_type="application/dicom",
        headers={"Content-Disposition": f'attachment; filename="{analysis}.seg.dcm"'},
    )


@router.get("/review-queue")
def review_queue(
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("viewer", "review.read", "analysis", polled=True)],
    limit: int = 20,
    offset: int = 0,
) -> Page:
    items, total = svc.analyses.review_queue(acc.project.id, limit, offset)
    return Page(
        items=[
            ReviewItemOut(analysis=analysis_out(i.analysis, False), image=image_out(i.image))
            for i in items
        ],
        total=total,
    )
