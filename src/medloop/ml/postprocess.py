"""Clean-ups of a predicted label map that the plan chose on the selection set.

Both work on a CT-sized label map without whole-volume temporaries beyond one boolean
mask and scipy's int32 component map: component sizes are counted
(:func:`~medloop.domain.measurements.value_counts`) and voxels cleared a chunk of the
flat arrays at a time (``np.bincount`` of the whole map would first make an int64 copy
of it, twice a float32 copy of the volume).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from medloop.domain.measurements import components, value_counts

__all__ = ["keep_largest_component", "postprocess", "remove_small_components"]

_CHUNK = 1 << 20
"""Voxels per chunk of the flat arrays cleared at once."""


def _clear(out: np.ndarray, comp: np.ndarray, drop: np.ndarray) -> None:
    """Set ``out`` to 0 (background) where ``comp`` is one of the components flagged in
    ``drop`` (bool ``(n + 1,)``, ``drop[0]`` false), in place, a chunk at a time."""
    flat_out, flat_comp = out.reshape(-1), comp.reshape(-1)
    for start in range(0, flat_out.size, _CHUNK):
        part = slice(start, start + _CHUNK)
        flat_out[part][drop[flat_comp[part]]] = 0


def keep_largest_component(labels: np.ndarray, values: Iterable[int]) -> np.ndarray:
    """``labels`` with each class in ``values`` reduced to its largest connected component.

    Connectivity is full (8 in 2D, 26 in 3D); voxels removed become background.
    """
    out = np.ascontiguousarray(labels).copy()
    for value in values:
        comp, n = components(labels == value)
        if n > 1:
            sizes = value_counts(comp, n + 1)
            sizes[0] = 0
            drop = np.ones(n + 1, dtype=bool)
            drop[[0, int(sizes.argmax())]] = False
            _clear(out, comp, drop)
        del comp
    return out


def remove_small_components(labels: np.ndarray, min_sizes: Iterable[tuple[int, int]]) -> np.ndarray:
    """``labels`` without the components of each ``(value, size)`` smaller than ``size`` voxels."""
    out = np.ascontiguousarray(labels).copy()
    for value, size in min_sizes:
        comp, n = components(labels == value)
        if n:
            drop = value_counts(comp, n + 1) < size
            drop[0] = False
            _clear(out, comp, drop)
        del comp
    return out


def postprocess(
    labels: np.ndarray, keep_largest: Iterable[int], min_size: Iterable[tuple[int, int]]
) -> np.ndarray:
    """A manifest's post-processing of a uint8 label map: each label in ``keep_largest``
    reduced to its largest component, then components smaller than ``min_size``'s
    ``(value, voxels)`` removed. ``labels`` itself is never changed."""
    keep, small = tuple(keep_largest), tuple(min_size)
    if keep:
        labels = keep_largest_component(labels, keep)
    if small:
        labels = remove_small_components(labels, small)
    return labels
