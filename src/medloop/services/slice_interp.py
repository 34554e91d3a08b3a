"""Shape-based interpolation of one label between edited slices of a volume.

A clinician outlines a structure on a few slices of one plane; the slices between two
neighbouring edited ones get the shape that morphs one outline into the other: the
signed distance to each outline (:func:`scipy.ndimage.distance_transform_edt`, positive
inside) is blended linearly along the slice axis and thresholded at zero
(Raya & Udupa, 1990).
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from medloop.errors import InputError

__all__ = ["interpolate_between", "parse_indices", "read_slices", "signed_distance"]

MAX_SLICES = 2048


def parse_indices(text: str, count: int) -> list[int]:
    """Slice indices from ``"3,10,17"``: at least two, distinct, each in ``0..count-1``.

    Raises:
        InputError: anything else.
    """
    try:
        indices = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise InputError(f"indices {text!r}: use comma-separated slice numbers") from None
    if len(indices) < 2 or len(set(indices)) != len(indices) or len(indices) > MAX_SLICES:
        raise InputError(f"indices {text!r}: give at least two distinct edited slices")
    bad = [i for i in indices if not 0 <= i < count]
    if bad:
        raise InputError(f"slice {bad[0]} is out of range: this plane has 0..{count - 1}")
    return indices


def read_slices(data: bytes, n: int, rows: int, cols: int) -> np.ndarray:
    """``n`` gzip'd uint8 slices ``(rows, cols)`` (row-major), as a bool array ``(n, rows, cols)``.

    Raises:
        InputError: not gzip, or not exactly ``n * rows * cols`` bytes.
    """
    expected = n * rows * cols
    inflater = zlib.decompressobj(31)
    try:
        raw = inflater.decompress(data, expected + 1)
    except zlib.error as err:
        raise InputError(f"the edited slices are not gzip data: {err}") from err
    if len(raw) != expected:
        raise InputError(f"{n} slices of {rows}x{cols} are {expected} bytes, got {len(raw)}")
    return np.frombuffer(raw, np.uint8).reshape(n, rows, cols) != 0


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Signed distance (pixels) to the outline of ``mask`` ``(rows, cols)`` bool: > 0 inside,
    <= 0 outside; -1 everywhere for an empty mask (a shape shrinks away towards it)."""
    if not mask.any():
        return np.full(mask.shape, -1.0, np.float32)
    inside = ndimage.distance_transform_edt(mask)
    outside = ndimage.distance_transform_edt(~mask)
    return np.asarray(inside - outside, np.float32)


def interpolate_between(masks: np.ndarray, indices: Sequence[int]) -> dict[int, np.ndarray]:
    """The label's shape on every slice strictly between two neighbouring edited ones.

    Args:
        masks: the edited slices ``(n, rows, cols)`` bool, in the order of ``indices``.
        indices: their slice numbers (distinct).

    Returns:
        slice number -> bool ``(rows, cols)``, for the slices between (edited ones excluded).
    """
    order = np.argsort(np.asarray(indices))
    known = [(int(indices[i]), signed_distance(masks[i])) for i in order]
    out: dict[int, np.ndarray] = {}
    for (a, da), (b, db) in itertools.pairwise(known):
        for k in range(a + 1, b):
            t = (k - a) / (b - a)
            out[k] = (1.0 - t) * da + t * db > 0
    return out
