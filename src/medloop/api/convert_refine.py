"""Correcting with clicks: request bodies to domain guidance, outcomes to JSON.

A 2D image's ``x, y`` are column and row, so its array index is ``(y, x)``; a volume's
``x, y, z`` are already its canonical array indices ``(x, y, z)``.
"""

from __future__ import annotations

import base64

from medloop.api.schemas_refine import ChangedBlockOut, LabelDiceOut, RefineIn, RefineOut, SegmentIn
from medloop.domain.clicks import Box, Click, Guidance
from medloop.errors import GuidanceError
from medloop.services.refine import RefineOutcome

__all__ = ["guidance_in", "refine_out"]


def guidance_in(body: RefineIn | SegmentIn) -> Guidance:
    """The request's clicks and box in array indices (see the module doc).

    Raises:
        GuidanceError: a box of 5 values (neither 2D nor 3D corners).
    """

    def index(x: float, y: float, z: float | None) -> tuple[float, ...]:
        return (y, x) if z is None else (x, y, z)

    clicks = tuple(Click(index(c.x, c.y, c.z), c.label, c.positive) for c in body.clicks)
    box = None
    if body.box is not None:
        if len(body.box) == 4:
            x0, y0, x1, y1 = body.box
            box = Box((y0, x0), (y1, x1), body.box_label)
        elif len(body.box) == 6:
            box = Box(tuple(body.box[:3]), tuple(body.box[3:]), body.box_label)
        else:
            raise GuidanceError(
                f"box: give [x0, y0, x1, y1] or [x0, y0, z0, x1, y1, z1], not {len(body.box)} values"
            )
    return Guidance(clicks, box)


def _box_out(box: Box | None) -> list[float] | None:
    if box is None:
        return None
    if len(box.start) == 2:
        (y0, x0), (y1, x1) = box.start, box.stop
        return [x0, y0, x1, y1]
    return [*box.start, *box.stop]


def refine_out(r: RefineOutcome) -> RefineOut:
    changed = None
    if r.block is not None:
        changed = ChangedBlockOut(
            offset=list(r.block.offset),
            shape=list(r.block.shape),
            data=base64.b64encode(r.block.data).decode("ascii"),
        )
    volume = len(r.shape) == 3
    return RefineOut(
        analysis_id=r.analysis_id,
        image_id=r.image_id,
        frame=r.frame,
        model_version=r.model_version,
        clicks=r.clicks,
        box=_box_out(r.box),
        box_label=None if r.box is None else r.box.label,
        width=r.shape[0] if volume else r.shape[1],
        height=r.shape[1] if volume else r.shape[0],
        depth=r.shape[2] if volume else None,
        mask_png=None if r.png is None else base64.b64encode(r.png).decode("ascii"),
        changed=changed,
        dice_vs_prediction=None
        if r.dice is None
        else [LabelDiceOut(label=d.label, name=d.name, dice=d.dice) for d in r.dice],
        changed_pixels=r.changed_pixels,
    )
