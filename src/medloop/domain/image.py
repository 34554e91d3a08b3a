"""The image type every reader produces and every consumer takes.

An :class:`Image` holds pixels and their geometry. Pixels are always a numpy
array of shape ``(H, W, C)`` with ``C`` in ``{1, 3}`` (alpha dropped, palettes
expanded), in their original numeric range (uint8, uint16 or float32 after a
DICOM rescale). Geometry is the pixel spacing in millimetres ``(row, col)``
when the source states it, else ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Image"]


@dataclass(frozen=True)
class Image:
    """Pixels plus geometry plus where they came from.

    Attributes:
        pixels: array ``(H, W, C)``, C = 1 (gray) or 3 (RGB).
        spacing: pixel spacing in mm as ``(row_spacing, col_spacing)``, or ``None``.
        source_format: short name of the decoder, e.g. ``"png"``, ``"dicom"``.
        metadata: source facts worth keeping (DICOM UIDs, photometric
            interpretation, bit depth, original mode); JSON-serialisable values.
    """

    pixels: np.ndarray
    spacing: tuple[float, float] | None = None
    source_format: str = "unknown"
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pixels.ndim != 3 or self.pixels.shape[2] not in (1, 3):
            raise ValueError(f"Image pixels must be (H, W, 1|3), got {self.pixels.shape}")
        if self.pixels.shape[0] == 0 or self.pixels.shape[1] == 0:
            raise ValueError(f"Image has zero size: {self.pixels.shape}")

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[2])

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)``."""
        return (self.height, self.width)

    @property
    def pixel_area_mm2(self) -> float | None:
        """Area of one pixel in mm², when spacing is known."""
        if self.spacing is None:
            return None
        return float(self.spacing[0] * self.spacing[1])
