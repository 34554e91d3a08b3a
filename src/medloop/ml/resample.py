"""Resampling between an image's own grid and the network's (2D and 3D), with torch.

Images shrink by area averaging (no aliasing) and grow by (bi/tri)linear
interpolation. Label maps are resampled as one-hot maps and re-labelled by argmax,
so a thin structure is not lost to nearest-neighbour picking. Probabilities go back
to the input's grid linearly before the label map is taken.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["resample_image", "resample_labels", "resample_probabilities", "target_shape"]


def target_shape(shape: tuple[int, ...], factors: tuple[float, ...]) -> tuple[int, ...]:
    """``shape`` scaled by ``factors``, rounded, at least 1 along every axis."""
    return tuple(max(1, round(s * f)) for s, f in zip(shape, factors, strict=True))


def _linear_mode(ndim: int) -> str:
    return "bilinear" if ndim == 2 else "trilinear"


def _resize(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``(B, C, *spatial)`` float tensor resized to ``shape``."""
    current = tuple(x.shape[2:])
    if current == shape:
        return x
    if all(n <= c for n, c in zip(shape, current, strict=True)):
        return F.interpolate(x, size=shape, mode="area")
    return F.interpolate(x, size=shape, mode=_linear_mode(len(shape)), align_corners=False)


@torch.inference_mode()
def resample_image(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``(C, *spatial)`` float32 image resampled to spatial ``shape``."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None]
    return _resize(t, shape)[0].numpy()


@torch.inference_mode()
def resample_labels(labels: np.ndarray, shape: tuple[int, ...], num_classes: int) -> np.ndarray:
    """``(*spatial)`` label map resampled to ``shape``: one-hot, resampled, argmax (uint8)."""
    t = torch.from_numpy(labels.astype(np.int64, copy=False))
    onehot = F.one_hot(t, num_classes).movedim(-1, 0)[None].float()
    return _resize(onehot, shape)[0].argmax(0).to(torch.uint8).numpy()


def resample_probabilities(probs: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``(K+1, *grid)`` softmax resampled to the input's spatial ``shape`` (still sums to 1)."""
    if tuple(probs.shape[1:]) == shape:
        return probs
    out = F.interpolate(
        probs[None].float(), size=shape, mode=_linear_mode(len(shape)), align_corners=False
    )[0]
    # In place, a slab at a time: a CT-sized volume's K+1 maps are hundreds of MiB each.
    step = max(1, (1 << 20) // max(1, math.prod(shape[1:])))
    for start in range(0, shape[0], step):
        part = out[:, start : start + step]
        part.div_(part.sum(0, keepdim=True).clamp_min_(1e-8))
    return out
