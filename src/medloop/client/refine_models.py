"""The JSON shapes of correcting with clicks, as the client sees them (see
``medloop.api.schemas_refine``; not imported: the client stays light).

Example::

    from medloop.client import Click

    r = client.refine("knee", a.id, [Click(x=120, y=80, label=1)])
    open("refined.png", "wb").write(r.mask)       # label map PNG (pixel value = label)
    print(r.clicks, [(d.name, round(d.dice, 3)) for d in r.dice_vs_prediction or []])

    # a volume: x, y, z are voxel indices along its canonical (RAS+) axes
    r = client.refine("brain", v.id, [Click(x=12, y=20, z=9, label=1)])
    labels = r.changed.apply(labels)               # numpy (X, Y, Z) uint8, pasted in place
    block = np.asarray(r.changed.view())           # the block alone, as numpy (X', Y', Z')
"""

from __future__ import annotations

import base64
import gzip
from typing import Any

from pydantic import BaseModel, ConfigDict

from medloop.client.models import ApiModel

__all__ = ["ChangedBlock", "Click", "LabelDiceOut", "RefineOut"]


class Click(BaseModel):
    """One click on the image as shown: ``x`` the column, ``y`` the row (pixels from the top
    left), the ``label`` it concerns, and whether it says "this is" (``positive``) or "this
    is not" the label. On a volume ``x, y, z`` (``z`` required) are voxel indices along its
    canonical RAS+ axes, as ``slice`` numbers them (sagittal, coronal, axial index). The
    server checks the values (422 → :class:`medloop.client.BadRequest`)."""

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


class ChangedBlock(ApiModel):
    """The block of a label volume one refine changed: ``shape`` uint8 labels at voxel
    ``offset``, gzip-compressed in ``data`` (base64), C order. ``shape`` all 0: nothing
    changed."""

    offset: list[int]
    shape: list[int]
    encoding: str = "gzip"
    dtype: str = "uint8"
    data: str

    @property
    def raw(self) -> bytes:
        """The block's labels as ``prod(shape)`` bytes, C order (the last axis fastest)."""
        return gzip.decompress(base64.b64decode(self.data))

    def view(self) -> memoryview:
        """The block as an N-d uint8 ``memoryview`` of ``shape``: ``numpy.asarray(view)`` is
        the block as an array (the SDK itself never imports numpy).

        Raises:
            ValueError: an empty block (nothing changed: check ``shape`` first).
        """
        if 0 in self.shape:
            raise ValueError("the block is empty: nothing changed")
        return memoryview(self.raw).cast("B", list(self.shape))

    def apply(self, volume: Any) -> Any:
        """Paste the block into ``volume`` (a numpy ``(X, Y, Z)`` uint8 array or anything
        that takes slice assignment of a buffer), in place; returns it."""
        if 0 in self.shape:
            return volume
        where = tuple(slice(o, o + s) for o, s in zip(self.offset, self.shape, strict=True))
        volume[where] = self.view()
        return volume


class RefineOut(ApiModel):
    """A refined (or clicked-from-scratch) label map; :attr:`mask` is its PNG bytes (2D).

    On a volume (``width`` x ``height`` x ``depth`` voxels) only :attr:`changed`, the
    block this refine changed, comes back; paste it into the label volume you hold with
    ``r.changed.apply(labels)``, or fetch the whole refined volume as NIfTI with
    :meth:`MedloopClient.refined_labels`.

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
    depth: int | None = None
    mask_png: str | None = None
    changed: ChangedBlock | None = None
    dice_vs_prediction: list[LabelDiceOut] | None = None
    changed_pixels: int | None = None

    @property
    def mask(self) -> bytes:
        """The label map as 8-bit gray PNG bytes (pixel value = label); 2D only.

        Raises:
            ValueError: a volume's answer (use :attr:`changed`).
        """
        if self.mask_png is None:
            raise ValueError("a volume's refine carries only the changed block: use .changed")
        return base64.b64decode(self.mask_png)
