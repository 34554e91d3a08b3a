"""The JSON shapes of correcting with clicks, as the client sees them (see
``medloop.api.schemas_refine``; not imported: the client stays light).

Example::

    from medloop.client import Click

    r = client.refine("knee", a.id, [Click(x=120, y=80, label=1)])
    open("refined.png", "wb").write(r.mask)       # label map PNG (pixel value = label)
    print(r.clicks, [(d.name, round(d.dice, 3)) for d in r.dice_vs_prediction or []])
"""

from __future__ import annotations

import base64

from pydantic import BaseModel, ConfigDict

from medloop.client.models import ApiModel

__all__ = ["Click", "LabelDiceOut", "RefineOut"]


class Click(BaseModel):
    """One click on the image as shown: ``x`` the column, ``y`` the row (pixels from the top
    left), the ``label`` it concerns, and whether it says "this is" (``positive``) or "this
    is not" the label. ``z`` only for volumes. The server checks the values (422 →
    :class:`medloop.client.BadRequest`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    x: float
    y: float
    label: int
    positive: bool = True
    z: float | None = None


class LabelDiceOut(ApiModel):
    label: int
    name: str
    dice: float


class RefineOut(ApiModel):
    """A refined (or clicked-from-scratch) label map; :attr:`mask` is its PNG bytes.

    ``dice_vs_prediction`` is per label against the analysis's automatic label map and
    ``changed_pixels`` how many pixels differ from it (``None`` for ``segment``);
    ``clicks`` counts the interaction's clicks so far.
    """

    analysis_id: str | None = None
    image_id: str
    frame: int = 0
    model_version: str
    clicks: int
    box: list[float] | None = None
    box_label: int | None = None
    width: int
    height: int
    mask_png: str
    dice_vs_prediction: list[LabelDiceOut] | None = None
    changed_pixels: int | None = None

    @property
    def mask(self) -> bytes:
        """The label map as 8-bit gray PNG bytes (pixel value = label)."""
        return base64.b64decode(self.mask_png)
