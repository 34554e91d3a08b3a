"""Pixels -> network input, exactly as the manifest's :class:`PreprocessSpec` says.

Colour is folded or replicated to the spec's channels, intensities are normalised
(per image, or with the dataset's clip window for CT-like data), then the image is
resampled to the plan's grid (a scale factor, or a target spacing when the image has
one). Label maps are resampled onto the same grid; predictions are resampled back
(:func:`medloop.ml.resample.resample_probabilities`) so results live on the input's grid.
"""

from __future__ import annotations

import numpy as np

from medloop.domain.image import Image
from medloop.domain.model import PreprocessSpec
from medloop.ml.resample import resample_image, resample_labels, target_shape

__all__ = ["grid_shape", "prepare", "prepare_mask", "prepare_pixels"]

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def grid_shape(
    shape: tuple[int, ...], spec: PreprocessSpec, spacing: tuple[float, ...] | None
) -> tuple[int, ...]:
    """The spatial shape an image of ``shape`` (and ``spacing``) has on the network's grid."""
    return target_shape(shape, spec.factors(len(shape), spacing))


_CHUNK = 1 << 20
"""Voxels per chunk of a channel normalised a chunk at a time (8 MiB of float64)."""


def _chunks(n: int) -> list[slice]:
    return [slice(i, min(i + _CHUNK, n)) for i in range(0, n, _CHUNK)]


def _normalize_(x: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """``(C, *spatial)`` float32 (contiguous, owned) normalised per channel, in place.

    The clipped channel is float64 (the percentiles are), but only a chunk of it exists
    at a time: its mean and standard deviation are summed over the chunks, in float64.
    """
    if spec.normalization == "clip_zscore":
        assert spec.intensity is not None  # checked by PreprocessSpec
        lo, hi, mean, std = spec.intensity
        np.clip(x, lo, hi, out=x)  # the float32 arithmetic of the plain formula
        np.subtract(x, mean, out=x)
        np.divide(x, std, out=x)
        return x
    lo_p, hi_p = spec.clip_percentiles
    for c in range(x.shape[0]):
        flat = x[c].reshape(-1)
        lo, hi = np.percentile(flat, [lo_p, hi_p])
        parts = _chunks(flat.size)
        mean = sum(float(np.clip(flat[p], lo, hi).sum()) for p in parts) / flat.size
        sq = sum(float(np.square(np.clip(flat[p], lo, hi) - mean).sum()) for p in parts)
        std = (sq / flat.size) ** 0.5
        if std > 1e-6:
            for p in parts:
                flat[p] = (np.clip(flat[p], lo, hi) - mean) / std
        else:
            flat[:] = 0.0
    return x


def prepare_pixels(
    pixels: np.ndarray, spec: PreprocessSpec, spacing: tuple[float, ...] | None = None
) -> np.ndarray:
    """Convert ``(*spatial, C)`` pixels of any dtype to float32 ``(C', *grid)``.

    ``C'`` is ``spec.channels``; ``grid`` is :func:`grid_shape` of the spatial shape.
    With ``zscore`` each channel is clipped to the spec's percentiles and z-scored
    over the image (a constant channel becomes zeros).
    """
    x = pixels.astype(np.float32, copy=False)
    if spec.color == "gray" and x.shape[-1] == 3:
        x = (x @ _LUMA)[..., None]
    elif spec.color == "rgb" and x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    x = np.ascontiguousarray(np.moveaxis(x, -1, 0))
    if np.shares_memory(x, pixels):  # normalised in place: never the caller's pixels
        x = x.copy()
    x = _normalize_(x, spec)
    shape = grid_shape(tuple(x.shape[1:]), spec, spacing)
    if shape != tuple(x.shape[1:]):
        x = resample_image(x, shape)
    return np.ascontiguousarray(x, dtype=np.float32)


def prepare(image: Image, spec: PreprocessSpec) -> np.ndarray:
    """:func:`prepare_pixels` for an :class:`Image`; returns ``(C, *grid)`` float32."""
    return prepare_pixels(image.pixels, spec, image.spacing)


def prepare_mask(
    mask: np.ndarray, spec: PreprocessSpec, spacing: tuple[float, ...] | None, num_classes: int
) -> np.ndarray:
    """A label map ``(*spatial)`` on the network's grid (uint8, values < ``num_classes``)."""
    shape = grid_shape(tuple(mask.shape), spec, spacing)
    if shape == tuple(mask.shape):
        return mask
    return resample_labels(mask, shape, num_classes)
