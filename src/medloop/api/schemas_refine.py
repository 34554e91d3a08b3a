"""JSON shapes of correcting with clicks: ``.../analyses/{a}/refine`` and ``.../images/{i}/segment``.

Coordinates of a 2D image are pixels of the image as shown: ``x`` the column, ``y`` the
row, from 0 at the top left (fractions allowed). Coordinates of a volume are voxel
indices along its canonical RAS+ axes, as ``.../slice`` names them: ``x`` the first
(the sagittal slice index), ``y`` the second (coronal), ``z`` the third (axial); a
volume's clicks need ``z`` and a 2D image's take none. Types are strict (``"3"`` is not
a number) and numbers must be finite; a click outside the image, of a label the project
does not have, a missing or extra ``z``, or one click too many answers 422 from the
service, naming the problem, and nothing is kept.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from medloop.domain.clicks import MAX_CLICKS

__all__ = ["ChangedBlockOut", "ClickIn", "LabelDiceOut", "RefineIn", "RefineOut", "SegmentIn"]

Coordinate = Annotated[float, Field(strict=True, allow_inf_nan=False)]
LabelValue = Annotated[int, Field(strict=True, ge=1, le=255)]


class ClickIn(BaseModel):
    """One click: where, for which label, and whether it says "this is" or "this is not"."""

    model_config = ConfigDict(extra="forbid")

    x: Coordinate
    y: Coordinate
    z: Coordinate | None = None
    """A volume's third (axial) voxel index: required for volumes, none for 2D images."""
    label: LabelValue
    positive: Annotated[bool, Field(strict=True)] = True


class _Guidance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clicks: list[ClickIn] = Field(default_factory=list, max_length=MAX_CLICKS)
    box: Annotated[list[Coordinate], Field(min_length=4, max_length=6)] | None = None
    """Two opposite corners around an object of ``box_label``: ``[x0, y0, x1, y1]`` on a
    2D image, ``[x0, y0, z0, x1, y1, z1]`` on a volume."""
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


class ChangedBlockOut(BaseModel):
    """The block of a label volume a request changed: ``data`` is base64 of the gzip of
    ``prod(shape)`` uint8 labels in C order (``z`` fastest), for voxels ``offset[i] ..
    offset[i] + shape[i] - 1`` along each canonical axis. ``shape`` ``[0, 0, 0]`` when
    nothing changed. Paste it into the label volume you hold (the analysis's
    ``.../mask`` at the start, or after ``reset``) to have the refined one."""

    offset: list[int]
    shape: list[int]
    encoding: str = "gzip"
    dtype: str = "uint8"
    data: str


class RefineOut(BaseModel):
    """The label map after all the interaction's clicks.

    A 2D image: ``mask_png`` is the whole label map as an 8-bit gray PNG (pixel value =
    label) in base64, the same shape as ``.../analyses/{a}/mask``; ``depth`` and
    ``changed`` are ``null``. A volume (``width`` x ``height`` x ``depth`` voxels along
    the canonical axes ``x, y, z``): ``mask_png`` is ``null`` and ``changed`` carries only
    the block this request changed (for ``segment``: the block inferred around the
    guidance, the rest being background); ``GET .../analyses/{a}/refine/labels`` gives
    the whole refined label volume as NIfTI.

    ``dice_vs_prediction``: per label against the analysis's automatic label map, and
    ``changed_pixels`` how many pixels (voxels) differ from it (both ``null`` for
    ``segment``).
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
    depth: int | None = None
    mask_png: str | None
    changed: ChangedBlockOut | None = None
    dice_vs_prediction: list[LabelDiceOut] | None
    changed_pixels: int | None
