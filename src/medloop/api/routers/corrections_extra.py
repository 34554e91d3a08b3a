"""``/api/v1/projects/{p}/corrections/{c}``: one correction and its stored label map.

The mask is the canonical PNG label map the server kept (8-bit gray, value =
label), whatever format the clinician uploaded; reading it is audited like the
analyses' masks.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from medloop.api.convert import correction_out
from medloop.api.schemas import CorrectionOut
from medloop.api.security import CallerDep, RuntimeDep, audit, project_for
from medloop.storage import repositories as repo

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/projects/{p}/corrections", tags=["analyses"])


@router.get("/{c}")
def get_correction(p: str, c: str, rt: RuntimeDep, who: CallerDep) -> CorrectionOut:
    project = project_for(rt, who, p, "viewer", "correction.read")
    with rt.session() as s:
        row = repo.get_correction(s, c, project.id)
        author = repo.get_user(s, row.author_id).name if row.author_id else None
    audit(rt, who, "correction.read", "correction", c, project.id)
    return correction_out(row, author)


@router.get("/{c}/mask", response_class=Response)
def get_correction_mask(p: str, c: str, rt: RuntimeDep, who: CallerDep) -> Response:
    project = project_for(rt, who, p, "viewer", "correction.mask")
    with rt.session() as s:
        row = repo.get_correction(s, c, project.id)
    data = rt.blobs.read_bytes(row.mask_blob_key, row.mask_sha256)
    audit(rt, who, "correction.mask", "correction", c, project.id)
    return Response(data, media_type="image/png")
