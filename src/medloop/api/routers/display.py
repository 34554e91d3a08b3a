"""``/api/v1/projects/{p}/images/{i}/display``: an 8-bit PNG of any image, windowed on the server.

Browsers decode 8-bit PNG and JPEG themselves, but not 16-bit or float pixels,
TIFF or DICOM. For those the viewer asks for this rendering, with the window
(``center``, ``width``) the user sets. Without a window the image's own is used:
the DICOM window centre/width when the file states one, else the 0.5th to 99.5th
percentiles of its pixels. The window used and the pixel range are returned in
``X-Window-Center``, ``X-Window-Width``, ``X-Pixel-Min`` and ``X-Pixel-Max``.
"""

from __future__ import annotations

import math

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Response

from medloop.api.security import CallerDep, RuntimeDep, audit, project_for
from medloop.domain.image import Image
from medloop.io import encode_png
from medloop.services.server_data import load_image
from medloop.storage import repositories as repo

__all__ = ["default_window", "render_window", "router"]

router = APIRouter(prefix="/api/v1/projects/{p}/images", tags=["images"])

_PERCENTILES = (0.5, 99.5)
_SAMPLE = 4_000_000


def _finite_sample(pixels: np.ndarray) -> np.ndarray:
    values = pixels.reshape(-1)
    if values.size > _SAMPLE:
        values = values[:: values.size // _SAMPLE + 1]
    return values[np.isfinite(values)] if values.dtype.kind == "f" else values


def default_window(image: Image) -> tuple[float, float]:
    """``(center, width)``: the DICOM window when stated (gray images), else percentiles."""
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


def render_window(image: Image, center: float, width: float) -> np.ndarray:
    """uint8 ``(H, W, 3)``: ``center - width/2`` maps to black, ``center + width/2`` to white."""
    if not (math.isfinite(center) and math.isfinite(width)) or width <= 0:
        raise ValueError(f"the window needs a finite center and a width > 0, got {center}, {width}")
    low = center - width / 2.0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # extreme windows
        scaled = (image.pixels.astype(np.float64) - low) * (255.0 / width)
        scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
        out = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    if out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    return np.ascontiguousarray(out)


@router.get("/{i}/display", response_class=Response)
def display_image(
    p: str,
    i: str,
    rt: RuntimeDep,
    who: CallerDep,
    center: float | None = Query(default=None, description="Window centre, in pixel values."),
    width: float | None = Query(default=None, gt=0, description="Window width, in pixel values."),
) -> Response:
    """The image as an 8-bit RGB PNG, windowed with ``center``/``width`` (or its own window)."""
    project = project_for(rt, who, p, "viewer", "image.display")
    with rt.session() as s:
        row = repo.get_image(s, i, project.id)
    image = load_image(rt, row)
    own_center, own_width = default_window(image)
    c = own_center if center is None else center
    w = own_width if width is None else width
    try:
        png = encode_png(render_window(image, c, w))
    except ValueError as err:
        raise HTTPException(422, str(err)) from err
    values = _finite_sample(image.pixels)
    lo = float(values.min()) if values.size else 0.0
    hi = float(values.max()) if values.size else 0.0
    audit(rt, who, "image.display", "image", i, project.id, detail={"center": c, "width": w})
    return Response(
        png,
        media_type="image/png",
        headers={
            "x-window-center": f"{c:.6g}",
            "x-window-width": f"{w:.6g}",
            "x-pixel-min": f"{lo:.6g}",
            "x-pixel-max": f"{hi:.6g}",
            "x-pixel-dtype": str(image.pixels.dtype),
        },
    )
