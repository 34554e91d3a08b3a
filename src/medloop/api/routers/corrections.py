"""``/api/v1/projects/{project}/corrections``: clinicians' label maps for analyses.

A correction is posted to the analysis it corrects (``/analyses/{analysis}/corrections``,
a label-map image or a DICOM SEG), or as a DICOM SEG that names its analyses through
the instances it references (``/corrections/seg``). The stored mask is the canonical
PNG label map (8-bit gray, value = label), whatever format was uploaded. A correction
may carry its effort record (form fields ``clicks``, ``brush_strokes``,
``active_seconds``); the server adds the Dice between the prediction and the mask.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile, status

from medloop.api.convert import correction_out, correction_result_out
from medloop.api.deps import ServicesDep
from medloop.api.routers._files import chunks, filename, label_response
from medloop.api.schemas import CorrectionOut, Page
from medloop.api.security import ProjectAccess, allow
from medloop.domain.records import CorrectionEffort

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/projects/{project}", tags=["corrections"])

Clicks = Annotated[int | None, Form(ge=0, le=100_000, description="Clicks given to the model.")]
Strokes = Annotated[int | None, Form(ge=0, le=1_000_000, description="Brush strokes painted.")]
Seconds = Annotated[
    float | None,
    Form(ge=0, le=7 * 86400, allow_inf_nan=False, description="Seconds of active editing."),
]


@router.post("/analyses/{analysis}/corrections", status_code=status.HTTP_201_CREATED)
def create_correction(
    analysis: str,
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("annotator", "correction.create", "correction")],
    file: Annotated[UploadFile, File()],
    clicks: Clicks = None,
    brush_strokes: Strokes = None,
    active_seconds: Seconds = None,
) -> CorrectionOut:
    """Store a corrected label map for the analysis, with its effort record if given."""
    acc.note(analysis=analysis)
    effort = CorrectionEffort(clicks, brush_strokes, active_seconds)
    res = svc.corrections.correct(
        acc.project, analysis, chunks(file), filename(file, "mask"), acc.who.user_id, effort
    )
    acc.note(res.correction.id, dice=res.correction.dice_vs_prediction)
    return correction_result_out(res)


@router.post("/analyses/{analysis}/corrections/voxels", status_code=status.HTTP_201_CREATED)
def create_voxel_correction(
    analysis: str,
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("annotator", "correction.create", "correction")],
    file: Annotated[UploadFile, File(description="uint8 labels, x fastest, gzip'd.")],
    clicks: Clicks = None,
    brush_strokes: Strokes = None,
    active_seconds: Seconds = None,
) -> CorrectionOut:
    """Store a corrected label volume sent as the viewer holds it: the analysed volume's
    canonical voxels (``GET .../voxels?kind=labels``'s layout), uint8, gzip'd."""
    acc.note(analysis=analysis, source="voxels")
    effort = CorrectionEffort(clicks, brush_strokes, active_seconds)
    res = svc.corrections.correct_voxels(
        acc.project, analysis, chunks(file), acc.who.user_id, effort
    )
    acc.note(res.correction.id, dice=res.correction.dice_vs_prediction)
    return correction_result_out(res)


@router.post("/corrections/seg", status_code=status.HTTP_201_CREATED)
def create_seg_corrections(
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("annotator", "correction.create", "correction")],
    file: Annotated[UploadFile, File()],
) -> Page:
    """Corrections from a DICOM SEG, matched to analyses by the instances it references."""
    acc.note(source="seg")
    results = svc.corrections.correct_from_seg(
        acc.project, chunks(file), filename(file, "seg.dcm"), acc.who.user_id
    )
    ids = [r.correction.id for r in results]
    acc.note(ids[0] if ids else None, corrections=ids)
    return Page(items=[correction_result_out(r) for r in results], total=len(results))


@router.get("/corrections")
def list_corrections(
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("viewer", "correction.list", "correction", polled=True)],
    limit: int = 100,
) -> Page:
    rows = svc.corrections.recent(acc.project.id, limit)
    return Page(items=[correction_out(c) for c in rows], total=len(rows))


@router.get("/corrections/{correction}")
def get_correction(
    correction: str,
    svc: ServicesDep,
    acc: Annotated[
        ProjectAccess, allow("viewer", "correction.read", "correction", resource="correction")
    ],
) -> CorrectionOut:
    return correction_out(svc.corrections.get(acc.project.id, correction))


@router.get("/corrections/{correction}/mask", response_class=Response)
def get_correction_mask(
    correction: str,
    svc: ServicesDep,
    acc: Annotated[
        ProjectAccess, allow("viewer", "correction.mask", "correction", resource="correction")
    ],
) -> Response:
    """The stored label map: an 8-bit gray PNG, or a gzipped NIfTI for a volume."""
    return label_response(svc.corrections.mask(acc.project.id, correction))
