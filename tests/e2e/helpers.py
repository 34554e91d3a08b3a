"""Geometry shared by the browser tests."""

from __future__ import annotations

import numpy as np

__all__ = ["capsule"]


def capsule(
    shape: tuple[int, int], p0: tuple[float, float], p1: tuple[float, float], r: float
) -> np.ndarray:
    """Pixels whose centre lies within ``r`` of the segment p0-p1 (points as ``(x, y)``)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]] + 0.5
    (x0, y0), (x1, y1) = p0, p1
    dx, dy = x1 - x0, y1 - y0
    len2 = dx * dx + dy * dy
    t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / len2, 0, 1) if len2 else np.zeros_like(xx)
    return np.asarray((xx - (x0 + t * dx)) ** 2 + (yy - (y0 + t * dy)) ** 2 <= r * r)
