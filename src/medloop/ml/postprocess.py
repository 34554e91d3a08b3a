"""Clean-ups of a predicted label map that the plan chose on the selection set."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import ndimage

__all__ = ["keep_largest_component", "remove_small_components"]


def keep_largest_component(labels: np.ndarray, values: Iterable[int]) -> np.ndarray:
    """``labels`` with each class in ``values`` reduced to its largest connected component.

    Connectivity is full (8 in 2D, 26 in 3D); voxels removed become background.
    """
    out = labels.copy()
    structure = np.ones((3,) * labels.ndim, dtype=bool)
    for value in values:
        region = labels == value
        comp, n = ndimage.label(region, structure=structure)
        if n > 1:
            sizes = np.bincount(comp.ravel())
            sizes[0] = 0
            out[region & (comp != int(sizes.argmax()))] = 0
    return out


def remove_small_components(labels: np.ndarray, min_sizes: Iterable[tuple[int, int]]) -> np.ndarray:
    """``labels`` without the components of each ``(value, size)`` smaller than ``size`` voxels."""
    out = labels.copy()
    structure = np.ones((3,) * labels.ndim, dtype=bool)
    for value, size in min_sizes:
        region = labels == value
        comp, n = ndimage.label(region, structure=structure)
        if n:
            sizes = np.bincount(comp.ravel())
            small = np.flatnonzero(sizes < size)
            out[region & np.isin(comp, small[small > 0])] = 0
    return out
