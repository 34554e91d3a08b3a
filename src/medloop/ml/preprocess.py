"""Pixels -> network input, exactly as the manifest's :class:`PreprocessSpec` says.

numpy only, so the same code serves training (before tensors exist) and inference.
"""

from __future__ import annotations

import numpy as np

from medloop.domain.image import Image
from medloop.domain.model import PreprocessSpec

__all__ = ["prepare", "prepare_pixels"]

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def prepare_pixels(pixels: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Convert ``(H, W, C)`` pixels of any dtype to float32 ``(C', H, W)``.

    ``C'`` is ``spec.channels``. Each channel is clipped to the spec's percentiles
    and z-scored (zero mean, unit variance) over the image; a constant channel
    becomes zeros.
    """
    x = pixels.astype(np.float32, copy=False)
    if spec.color == "gray" and x.shape[2] == 3:
        x = (x @ _LUMA)[..., None]
    elif spec.color == "rgb" and x.shape[2] == 1:
        x = np.repeat(x, 3, axis=2)
    x = np.ascontiguousarray(np.moveaxis(x, 2, 0))
    lo_p, hi_p = spec.clip_percentiles
    out = np.empty_like(x)
    for c in range(x.shape[0]):
        ch = x[c]
        lo, hi = np.percentile(ch, [lo_p, hi_p])
        ch = np.clip(ch, lo, hi)
        std = float(ch.std())
        out[c] = (ch - float(ch.mean())) / std if std > 1e-6 else 0.0
    return out


def prepare(image: Image, spec: PreprocessSpec) -> np.ndarray:
    """:func:`prepare_pixels` for an :class:`Image`; returns ``(C, H, W)`` float32."""
    return prepare_pixels(image.pixels, spec)
