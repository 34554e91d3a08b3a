"""Correct with clicks: ``.../analyses/{analysis}/refine`` and ``.../images/{image}/segment``.

A refine adds clicks (and a box) to the caller's interaction with an analysis and
answers the refined label map (a 2D image's whole map; a volume's changed block only,
with ``.../refine/labels`` for the whole refined volume as NIfTI); it stores nothing
(only a submitted correction is kept), but is audited like an analysis. A segment makes a label map of a stored image
from clicks or a box alone. Annotators and admins only. The model runs in the
analyses' executor, never on the event loop.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Response

from medloop.api.convert_refine import guidance_in, refine_out
from medloop.api.deps import ServicesDep
from medloop.api.routers._files import label_response
from medloop.api.schemas_refine import RefineIn, RefineOut, SegmentIn
from medloop.api.security import ProjectAccess, allow

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/projects/{project}", tags=["refine"])


@router.post("/analyses/{analysis}/refine")
async def refine_analysis(
    analysis: str,
    body: RefineIn,
    svc: ServicesDep,
    acc: Annotated[
        ProjectAccess, allow("annotator", "analysis.refine", "analysis", resource="analysis")
    ],
) -> RefineOut:
    """Refine the analysis with clicks; they accumulate until ``reset`` (nothing is stored)."""
    guidance = guidance_in(body)
    acc.note(new_clicks=len(guidance.clicks), box=guidance.box is not None, reset=body.reset)
    future = svc.refinements.refine(acc.project, analysis, acc.who.user_id, guidance, body.reset)
    result = await asyncio.wrap_future(future)
    acc.note(clicks=result.clicks, version=result.model_version)
    return refine_out(result)


@router.get("/analyses/{analysis}/refine/labels", response_class=Response)
def refined_labels(
    analysis: str,
    svc: ServicesDep,
    acc: Annotated[
        ProjectAccess,
        allow("annotator", "analysis.refine.labels", "analysis", resource="analysis"),
    ],
) -> Response:
    """Your refined label map as it stands after your last refine: an 8-bit gray PNG (2D)
    or a gzipped NIfTI on the uploaded volume's grid and affine (a volume). 404 when you
    have not refined this analysis in the last few minutes."""
    return label_response(svc.refinements.labels(acc.project, analysis, acc.who.user_id))


@router.post("/images/{image}/segment")
async def segment_image(
    image: str,
    body: SegmentIn,
    svc: ServicesDep,
    acc: Annotated[ProjectAccess, allow("annotator", "image.segment", "image", resource="image")],
) -> RefineOut:
    """Segment a stored image from clicks or a box alone, with the production version."""
    guidance = guidance_in(body)
    acc.note(clicks=len(guidance.clicks), box=guidance.box is not None, frame=body.frame)
    future = svc.refinements.segment(acc.project, image, acc.who.user_id, guidance, body.frame)
    result = await asyncio.wrap_future(future)
    acc.note(version=result.model_version)
    return refine_out(result)
