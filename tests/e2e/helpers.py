"""Geometry shared by the browser tests."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["capsule", "red_pixels"]


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


def red_pixels(page: Any) -> int:
    """Pixels of the viewer's canvas that show the label colour (#ff3b30) over the gray image,
    counted after the next frame is drawn."""
    return int(
        page.evaluate(
            """() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => {
              const c = document.querySelector('canvas[data-testid=stage]');
              const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
              let n = 0;
              for (let i = 0; i < d.length; i += 4) if (d[i] - d[i + 1] > 60 && d[i] - d[i + 2] > 60) n++;
              done(n);
            })))"""
        )
    )
