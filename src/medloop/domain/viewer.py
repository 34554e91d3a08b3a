"""What the browser's viewer is told about a whole volume it fetches: the stream's header.

A volume travels to the viewer as one gzip stream of raw little-endian voxels in viewer
order (see :mod:`medloop.services.voxels`). Its header says how to read the stream
(shape, voxel type), how to show it (spacing, the volume's own window), and on which grid
it lies (the canonical array's affine), so that a label volume can be checked against
the image without decoding the image. A prepared copy of the stream is stored with its
header (``images.viewer_header``), as JSON (:meth:`VoxelHeader.to_json`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["DTYPES", "VoxelHeader"]

DTYPES = ("int16", "float32", "uint8")
"""The voxel types the viewer reads (``uint8``: labels)."""


@dataclass(frozen=True)
class VoxelHeader:
    """How to read and show a viewer stream of ``X * Y * Z`` voxels.

    Attributes:
        shape: ``(X, Y, Z)`` voxels of the canonical RAS+ array.
        spacing: mm per voxel along ``(X, Y, Z)``, if known.
        dtype: one of :data:`DTYPES`, little-endian.
        center, width: the volume's own window in its units (``None`` for labels).
        affine: the canonical array's voxel-to-world matrix ``(4, 4)`` in mm, its 16
            values row by row, if known.
    """

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float] | None
    dtype: str
    center: float | None = None
    width: float | None = None
    affine: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.shape) != 3 or any(n <= 0 for n in self.shape):
            raise ValueError(f"a viewer stream's shape is (X, Y, Z) > 0, got {self.shape}")
        if self.dtype not in DTYPES:
            raise ValueError(f"a viewer stream's dtype is one of {DTYPES}, got {self.dtype!r}")
        if self.spacing is not None and (
            len(self.spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in self.spacing)
        ):
            raise ValueError(f"spacing must be 3 finite values > 0, got {self.spacing}")
        if (self.center is None) != (self.width is None):
            raise ValueError(f"give both center and width or neither: {self.center, self.width}")
        if self.affine is not None and (
            len(self.affine) != 16 or not all(math.isfinite(v) for v in self.affine)
        ):
            raise ValueError(f"affine must be 16 finite values, got {self.affine}")

    @property
    def voxels(self) -> int:
        """``X * Y * Z``."""
        return self.shape[0] * self.shape[1] * self.shape[2]

    def labels(self) -> VoxelHeader:
        """The header of a label volume on the same grid (``uint8``, no window)."""
        return replace(self, dtype="uint8", center=None, width=None)

    def to_json(self) -> dict[str, Any]:
        """A JSON object of the header (read back by :meth:`from_json`)."""
        return {
            "shape": list(self.shape),
            "spacing": None if self.spacing is None else list(self.spacing),
            "dtype": self.dtype,
            "center": self.center,
            "width": self.width,
            "affine": None if self.affine is None else list(self.affine),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VoxelHeader:
        """The header :meth:`to_json` wrote.

        Raises:
            ValueError: a missing or malformed field (the message names it).
        """
        try:
            x, y, z = _three(data["shape"], "shape")
            return cls(
                (int(x), int(y), int(z)),
                None if data.get("spacing") is None else _three(data["spacing"], "spacing"),
                str(data["dtype"]),
                _float(data.get("center")),
                _float(data.get("width")),
                None if data.get("affine") is None else tuple(float(v) for v in data["affine"]),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"not a viewer stream's header: {err!r} in {dict(data)}") from err


def _three(values: Any, name: str) -> tuple[float, float, float]:
    a = [float(v) for v in values]
    if len(a) != 3:
        raise ValueError(f"a viewer stream's {name} has 3 values, got {values}")
    return a[0], a[1], a[2]


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
