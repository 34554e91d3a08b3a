"""JSON shapes of correcting with clicks: ``.../analyses/{a}/refine`` and ``.../images/{i}/segment``.

Coordinates are pixels of the image as shown: ``x`` the column, ``y`` the row, from 0
at the top left (fractions allowed). Types are strict (``"3"`` is not a number) and
numbers must be finite; a click outside the image, of a label the project does not
have, or one too many answers 422 from the service, naming the problem.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from medloop.domain.clicks import MAX_CLICKS

__all__ = ["ClickIn", "LabelDiceOut", "RefineIn", "RefineOut", "SegmentIn"]

Coordinate = Annotated[float, Field(strict=True, allow_inf_nan=False)]
LabelValue = Annotated[int, Field(strict=True, ge=1, le=255)]


class ClickIn(BaseModel):
    """One click: where, for which label, and whether it says "this is" or "this is not"."""

    model_config = ConfigDict(extra="forbid")

    x: Coordinate
    y: Coordinate
    z: Coordinate | None = None
    """Slice of a volume; 2D images and frames take none."""
    label: LabelValue
    positive: Annotated[bool, Field(strict=True)] = True


class _Guidance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clicks: list[ClickIn] = Field(default_factory=list, max_length=MAX_CLICKS)
    box: Annotated[list[Coordinate], Field(min_length=4, max_length=4)] | None = None
    """``[x0, y0, x1, y1]``: two opposite corners around an object of ``box_label``."""
    box_label: LabelValue = 1


class RefineIn(_Guidance):
    """New clicks (and a box) for an analysis; they add to the interaction's earlier ones.

    ``reset``: forget the earlier clicks and box first (start over from the analysis).
    """

    reset: Annotated[bool, Field(strict=True)] = False


class SegmentIn(_Guidance):
    """Clicks or a box (at least one) on a stored image; ``frame`` of a multi-frame image."""

    frame: Annotated[int, Field(strict=True, ge=0, le=100_000)] = 0


class LabelDiceOut(BaseModel):
    label: int
    name: str
    dice: float


class RefineOut(BaseModel):
    """The label map after all the interaction's clicks: ``mask_png`` is an 8-bit gray PNG
    (pixel value = label) in base64, the same shape as ``.../analyses/{a}/mask``.

    ``dice_vs_prediction``: per label against the analysis's automatic label map, and
    ``changed_pixels`` how many pixels differ from it (both ``null`` for ``segment``).
    """

    analysis_id: str | None
    image_id: str
    frame: int
    model_version: str
    clicks: int
    box: list[float] | None
    box_label: int | None
    width: int
    height: int
    mask_png: str
    dice_vs_prediction: list[LabelDiceOut] | None
    changed_pixels: int | None
