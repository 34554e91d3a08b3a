"""Display windowing: how any image becomes 8-bit RGB for a screen (the one copy).

A window ``(center, width)`` maps ``center - width/2`` to black and ``center + width/2``
to white, linearly. An image's own window is the DICOM window centre/width when its
metadata states one (gray images), else identity for 8-bit pixels, else the 0.5th
to 99.5th percentiles of its values::

    center, width = default_window(image)
    rgb = render_window(image, center, width)     # uint8 (H, W, 3)
"""

from __future__ import annotations

import math

import numpy as np

from medloop.domain.image import Image

__all__ = ["default_window", "pixel_range", "render_window", "to_display_rgb"]

_PERCENTILES = (0.5, 99.5)
_SAMPLE = 4_000_000  # pixels used to estimate a window


def _finite_sample(pixels: np.ndarray) -> np.ndarray:
    values = pixels.reshape(-1)
    if values.size > _SAMPLE:
        values = values[:: values.size // _SAMPLE + 1]
    return values[np.isfinite(values)] if values.dtype.kind == "f" else values


def default_window(image: Image) -> tuple[float, float]:
    """``(center, width)``: the DICOM window when stated (gray images), identity for
    uint8, else the 0.5th to 99.5th percentiles (min to max when they coincide)."""
    centre = image.metadata.get("WindowCenter")
    width = image.metadata.get("WindowWidth")
    if (
        image.channels == 1
        and isinstance(centre, int | float)
        and isinstance(width, int | float)
        and width > 0
    ):
        return float(centre), float(width)
    if image.pixels.dtype == np.uint8:
        return 127.5, 255.0
    values = _finite_sample(image.pixels)
    if values.size == 0:
        return 0.5, 1.0
    low, high = (float(v) for v in np.percentile(values, _PERCENTILES))
    if high <= low:
        low, high = float(values.min()), float(values.max())
    return (low + high) / 2.0, max(high - low, 1e-6)


def pixel_range(image: Image) -> tuple[float, float]:
    """The smallest and largest finite pixel value (``(0, 0)`` when there is none)."""
    values = _finite_sample(image.pixels)
    if values.size == 0:
        return 0.0, 0.0
    return float(values.min()), float(values.max())


def render_window(image: Image, center: float, width: float) -> np.ndarray:
    """uint8 ``(H, W, 3)``: ``center - width/2`` maps to black, ``center + width/2`` to white.

    Raises:
        ValueError: a center or width that is not finite, or a width ≤ 0.
    """
    if not (math.isfinite(center) and math.isfinite(width)) or width <= 0:
        raise ValueError(f"the window needs a finite center and a width > 0, got {center}, {width}")
    low = center - width / 2.0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # extreme windows
        scaled = (image.pixels.astype(np.float64) - low) / width * 255.0
        scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
        out = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    if out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    return np.ascontiguousarray(out)


def to_display_rgb(image: Image) -> np.ndarray:
    """The image in its own window (:func:`default_window`): a new uint8 ``(H, W, 3)``."""
    return render_window(image, *default_window(image))
