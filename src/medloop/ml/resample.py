"""Resampling between an image's own grid and the network's (2D and 3D), with torch.

Images shrink by area averaging (no aliasing) and grow by (bi/tri)linear
interpolation. Label maps are resampled as one-hot maps and re-labelled by argmax,
so a thin structure is not lost to nearest-neighbour picking. Probabilities go back
to the input's grid linearly before the label map is taken.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from medloop.ml.reductions import class_argmax

__all__ = [
    "resample_image",
    "resample_labels",
    "resample_probabilities",
    "resample_slabs",
    "target_shape",
]


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
    return class_argmax(_resize(onehot, shape)[0]).numpy()


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


_PLANES_VOXELS = 1 << 20
"""Voxels per class in one step of :func:`resample_slabs` (4 MiB of float32 a map)."""


def _source_planes(grid: int, size: int) -> tuple[list[int], list[int], list[float]]:
    """Per output plane of ``size``, the two grid planes and the weight of the second,
    as ``F.interpolate(..., align_corners=False)`` picks them from ``grid`` planes (in
    float32 arithmetic, as torch does for float32 maps)."""
    f = np.float32
    scale = f(grid) / f(size)
    i0s, i1s, lams = [], [], []
    for z in range(size):
        src = max(scale * (f(z) + f(0.5)) - f(0.5), f(0.0))
        i0 = min(int(src), grid - 1)
        i0s.append(i0)
        i1s.append(i0 + 1 if i0 < grid - 1 else i0)
        lams.append(float(min(max(src - f(i0), f(0.0)), f(1.0))))
    return i0s, i1s, lams


def resample_slabs(
    slabs: Iterable[tuple[int, torch.Tensor]], grid: tuple[int, ...], shape: tuple[int, ...]
) -> Iterator[tuple[int, torch.Tensor]]:
    """:func:`resample_probabilities`, a slab of the first axis at a time.

    Args:
        slabs: ``(start, probs)`` in order, ``probs`` ``(K+1, n, *grid[1:])`` softmax of
            grid planes ``start .. start+n``, covering ``grid[0]`` once.
        grid: the probabilities' spatial shape.
        shape: the input's spatial shape.

    Yields:
        ``(start, probs)`` in order, ``probs`` ``(K+1, m, *shape[1:])`` on input planes
        ``start .. start+m``: linear along the first axis with the whole volume's scale,
        then (bi)linear in-plane, then renormalised; equal to the whole-volume
        resampling within float rounding. A grid equal to ``shape`` passes unchanged.
    """
    if grid == shape:
        yield from slabs
        return
    i0s, i1s, lams = _source_planes(grid[0], shape[0])
    mode = {1: "linear", 2: "bilinear"}[len(shape) - 1]
    plane = max(math.prod(grid[1:]), math.prod(shape[1:]))
    step = max(1, _PLANES_VOXELS // plane)
    held: torch.Tensor | None = None
    h0 = z = 0  # the grid plane held[:, 0] is; the next output plane
    for start, probs in slabs:
        held = probs if held is None else torch.cat([held, probs], dim=1)
        end = start + probs.shape[1]
        first = z
        while z < shape[0] and i1s[z] < end:
            z += 1
        for lo in range(first, z, step):  # a few output planes at a time: small temporaries
            hi = min(lo + step, z)
            a = torch.tensor([i - h0 for i in i0s[lo:hi]])
            b = torch.tensor([i - h0 for i in i1s[lo:hi]])
            lam = torch.tensor(lams[lo:hi], dtype=held.dtype).view(1, -1, *[1] * (len(shape) - 1))
            lin = held[:, a] * (1 - lam) + held[:, b] * lam
            if tuple(lin.shape[2:]) != shape[1:]:
                lin = F.interpolate(
                    lin.movedim(1, 0), size=shape[1:], mode=mode, align_corners=False
                ).movedim(0, 1)
            lin /= lin.sum(0, keepdim=True).clamp_min_(1e-8)
            yield lo, lin
            del lin
        keep = i0s[z] - h0 if z < shape[0] else held.shape[1]
        held, h0 = held[:, keep:], h0 + keep
    assert z == shape[0], f"resampled {z} of {shape[0]} planes"
