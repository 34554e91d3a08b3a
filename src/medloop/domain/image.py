"""The image type every reader produces and every consumer takes: a 2D image or a 3D volume.

An :class:`Image` holds pixels and their geometry. Pixels are a numpy array of shape
``(H, W, C)`` for a 2D image or ``(X, Y, Z, C)`` for a volume, ``C`` in ``{1, 3}``
(alpha dropped, palettes expanded), in their original numeric range (uint8, uint16,
int16 or float32 after a DICOM rescale).

Geometry: ``spacing`` is the size of a pixel (row, col) or voxel (along each of the
three array axes) in millimetres when the source states it, else ``None``. A volume
also has an ``affine``: the 4x4 matrix mapping voxel indices to world (RAS+)
millimetres. Readers reorient volumes to the closest canonical orientation (array
axes ~ right, anterior, superior), so every volume of a project is laid out alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Image"]


@dataclass(frozen=True)
class Image:
    """Pixels plus geometry plus where they came from.

    Attributes:
        pixels: ``(H, W, C)`` or ``(X, Y, Z, C)``, C = 1 (gray) or 3 (RGB).
        spacing: mm per pixel along each spatial axis, or ``None``.
        source_format: short name of the decoder, e.g. ``"png"``, ``"dicom"``, ``"nifti"``.
        metadata: source facts worth keeping (DICOM UIDs, photometric
            interpretation, bit depth, original mode, a volume's original
            orientation); JSON-serialisable values.
        affine: a volume's voxel-to-world matrix ``(4, 4)`` in mm, or ``None``.
    """

    pixels: np.ndarray
    spacing: tuple[float, ...] | None = None
    source_format: str = "unknown"
    metadata: dict[str, Any] = field(default_factory=dict)
    affine: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.pixels.ndim not in (3, 4) or self.pixels.shape[-1] not in (1, 3):
            raise ValueError(
                f"Image pixels must be (H, W, 1|3) or (X, Y, Z, 1|3), got {self.pixels.shape}"
            )
        if 0 in self.pixels.shape:
            raise ValueError(f"Image has zero size: {self.pixels.shape}")
        if self.spacing is not None:
            if len(self.spacing) != self.ndim:
                raise ValueError(f"{self.ndim}D image with spacing {self.spacing}")
            if not all(math.isfinite(s) and s > 0 for s in self.spacing):
                raise ValueError(f"spacing must be finite and > 0, got {self.spacing}")
        if self.affine is not None and self.affine.shape != (4, 4):
            raise ValueError(f"affine must be 4x4, got {self.affine.shape}")

    @property
    def ndim(self) -> int:
        """Spatial dimensions: 2 or 3."""
        return int(self.pixels.ndim - 1)

    @property
    def is_volume(self) -> bool:
        return self.ndim == 3

    @property
    def shape(self) -> tuple[int, ...]:
        """The spatial shape: ``(H, W)`` or ``(X, Y, Z)``."""
        return tuple(int(s) for s in self.pixels.shape[:-1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[-1])

    @property
    def pixel_area_mm2(self) -> float | None:
        """Area of one pixel in mm², for a 2D image whose spacing is known."""
        if self.spacing is None or self.ndim != 2:
            return None
        return float(self.spacing[0] * self.spacing[1])

    @property
    def voxel_volume_mm3(self) -> float | None:
        """Volume of one voxel in mm³, for a volume whose spacing is known."""
        if self.spacing is None or self.ndim != 3:
            return None
        return float(np.prod(self.spacing))

    @property
    def element_size(self) -> float | None:
        """mm² of a pixel (2D) or mm³ of a voxel (3D), when the spacing is known."""
        return self.pixel_area_mm2 if self.ndim == 2 else self.voxel_volume_mm3
