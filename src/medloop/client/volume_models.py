"""Client mirror of a slice of a volume analysis (kept apart: ``models`` is near its size limit)."""

from __future__ import annotations

from medloop.client.models import ApiModel

__all__ = ["SliceOut"]


class SliceOut(ApiModel):
    """``GET .../analyses/{a}/slice``: one slice of a volume analysis as PNG bytes.

    ``count`` is the number of slices in that plane (indices ``0..count-1``),
    ``spacing_mm`` the mm per (row, column) of the PNG, ``center``/``width`` the window
    used (``None`` for a label map).
    """

    png: bytes
    count: int
    spacing_mm: tuple[float, float] | None = None
    center: float | None = None
    width: float | None = None
