"""Single slices of a volume for any client: the planes, their display orientation, windows.

Volumes are held in canonical RAS+ orientation (array axes ~ right, anterior, superior;
see :mod:`medloop.io.volumes`). A slice is shown as radiologists do: the patient's right
on the screen's left (axial, coronal), anterior on the left (sagittal), superior at the
top (coronal, sagittal), anterior at the top (axial).

- ``axial``: a fixed third (superior) index, ``(Y, X)`` on screen;
- ``coronal``: a fixed second (anterior) index, ``(Z, X)`` on screen;
- ``sagittal``: a fixed first (right) index, ``(Z, Y)`` on screen.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np

from medloop.errors import InputError
from medloop.io.volumes import sniff_volume

__all__ = [
    "KINDS",
    "PLANES",
    "WINDOW_PRESETS",
    "LabelFile",
    "VolumeCache",
    "label_file",
    "parse_window",
    "plane_slice",
    "slice_spacing",
]

T = TypeVar("T")
Plane = Literal["axial", "coronal", "sagittal"]
PLANES: dict[str, int] = {"axial": 2, "coronal": 1, "sagittal": 0}
"""The canonical array axis each plane fixes."""
KINDS = ("image", "overlay", "mask")

WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "soft-tissue": (40.0, 400.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}
"""CT windows ``(center, width)`` in Hounsfield units."""


@dataclass(frozen=True)
class LabelFile:
    """A stored label map (an analysis's or a correction's), ready to send."""

    data: bytes
    media_type: str
    """``image/png`` (2D: 8-bit gray, value = label) or ``application/gzip`` (a volume:
    a gzipped uint8 NIfTI on the input volume's grid and affine)."""
    filename: str


def label_file(data: bytes, stem: str) -> LabelFile:
    """The stored label map ``data`` with its media type and a file name from ``stem``."""
    if sniff_volume(data) is not None:
        return LabelFile(data, "application/gzip", f"{stem}.labels.nii.gz")
    return LabelFile(data, "image/png", f"{stem}.labels.png")


def _plane_axis(plane: str) -> int:
    axis = PLANES.get(plane)
    if axis is None:
        raise InputError(f"unknown plane {plane!r}: use axial, coronal or sagittal")
    return axis


def plane_slice(volume: np.ndarray, plane: str, index: int) -> np.ndarray:
    """One slice of ``volume`` (``(X, Y, Z)`` or ``(X, Y, Z, C)``, canonical RAS+), in
    display orientation: ``(rows, cols)`` or ``(rows, cols, C)`` (see the module doc).

    Raises:
        InputError: an unknown plane, or an index outside ``0..n-1`` of that plane.
    """
    axis = _plane_axis(plane)
    count = int(volume.shape[axis])
    if not 0 <= index < count:
        raise InputError(f"{plane} slice {index} is out of range: this volume has 0..{count - 1}")
    cut = np.take(volume, index, axis=axis)  # (a, b[, C]) with a before b in X, Y, Z
    cut = np.swapaxes(cut, 0, 1)  # rows = the later axis
    return np.ascontiguousarray(cut[::-1, ::-1])


def slice_spacing(spacing: tuple[float, ...] | None, plane: str) -> tuple[float, float] | None:
    """mm per ``(row, col)`` of a slice of a volume with voxel ``spacing``, if known."""
    axis = _plane_axis(plane)
    if spacing is None:
        return None
    a, b = (s for i, s in enumerate(spacing) if i != axis)
    return (float(b), float(a))


def parse_window(text: str | None, default: tuple[float, float]) -> tuple[float, float]:
    """``(center, width)`` from ``window``: absent or ``auto`` (the ``default``), a preset
    (``soft-tissue``, ``lung``, ``bone``, ``brain``) or ``"center,width"``.

    Raises:
        InputError: anything else, or a width that is not > 0.
    """
    value = (text or "auto").strip().lower()
    if value == "auto":
        return default
    if value in WINDOW_PRESETS:
        return WINDOW_PRESETS[value]
    parts = value.split(",")
    try:
        center, width = (float(p) for p in parts)
    except ValueError:
        raise InputError(
            f"window {text!r}: use auto, {', '.join(WINDOW_PRESETS)}, or 'center,width'"
        ) from None
    if not (math.isfinite(center) and math.isfinite(width)) or width <= 0:
        raise InputError(f"window {text!r}: the center must be finite and the width > 0")
    return center, width


class VolumeCache:
    """The volumes and label volumes last decoded for slices, by content (stored blobs never
    change), at most ``max_bytes`` together; the least recently used go first, and an
    entry larger than the whole cache is not kept. Thread-safe; two threads missing the
    same key both load it.

    Args:
        max_bytes: the cache's size (0: keep nothing).
    """

    def __init__(self, max_bytes: int = 256 << 20) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0

    def get(self, key: Hashable, load: Callable[[], T], size: Callable[[T], int]) -> T:
        """The value under ``key``, from ``load()`` when not held (``size``: its bytes)."""
        with self._lock:
            held = self._items.get(key)
            if held is not None:
                self._items.move_to_end(key)
                return held[0]
        value = load()
        nbytes = size(value)
        if nbytes > self.max_bytes:
            return value
        with self._lock:
            if key not in self._items:
                self._items[key] = (value, nbytes)
                self._bytes += nbytes
            while self._bytes > self.max_bytes:
                _, (_, freed) = self._items.popitem(last=False)
                self._bytes -= freed
        return value

    def peek(self, key: Hashable) -> Any | None:
        """The value under ``key`` if held (made the most recently used), else ``None``."""
        with self._lock:
            held = self._items.get(key)
            if held is None:
                return None
            self._items.move_to_end(key)
            return held[0]

    @property
    def held_bytes(self) -> int:
        """Bytes held now."""
        with self._lock:
            return self._bytes
