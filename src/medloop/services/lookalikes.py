"""Look-alike replay: replayed pairs like the corrections and unlike the rest weigh more.

A fine-tune disturbs most what resembles what it learns. On DSB nuclei, 9 of the 334
fluorescence training images are gray brightfield (dark nuclei on a bright background),
like the brightfield/H&E corrections; none of the locked set is. Over two rounds of
corrections, three such test images lost 0.21-0.27 of Dice while none of the other 45
of the source test set lost more than 0.007, and the gate, on a locked set without
them, could not see it. Drawn at weight 1 among 256, those pairs are replayed too
rarely to be kept.

Each image is described by the quantiles of its prepared (normalised) intensities per
channel, which tell a bright background from a dark one and colour from gray. A
replayed pair is a look-alike when it lies nearer to a correction than :data:`NEAR`
times the replay's median distance to the corrections: a kind of image that the rest
of the replay is not (against 8 DSB corrections, 9 of 256 replayed pairs, 8 of them
gray brightfield; on BUSI, where the corrections and the replay are all breast
ultrasound, 3 of 84). At most a share of the replay, the nearest, gets a higher weight
and the others a lower one, so the replay's total weight, and with it the corrections'
share of every batch, stays what the policy says.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["NEAR", "QUANTILES", "appearance", "lookalike_weights"]

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
"""Quantiles of each channel's prepared intensities that describe an image."""
NEAR = 0.5
"""A look-alike lies nearer to a correction than this share of the replay's median
distance to the corrections."""
_SAMPLES = 20_000
"""At most this many voxels per channel are read for the quantiles (a regular stride)."""


def appearance(image: np.ndarray) -> np.ndarray:
    """An image's description ``(C * len(QUANTILES),)`` float64: the quantiles of each
    channel of the prepared image ``(C, *spatial)`` (z-scored units), over a regular
    sample of at most :data:`_SAMPLES` voxels."""
    flat = image.reshape(image.shape[0], -1)
    step = max(1, flat.shape[1] // _SAMPLES)
    q = np.quantile(flat[:, ::step].astype(np.float64), QUANTILES, axis=1)
    return np.ascontiguousarray(q.T).ravel()


def lookalike_weights(
    corrections: Sequence[np.ndarray], replay: Sequence[np.ndarray], share: float, weight: float
) -> np.ndarray:
    """Each replayed pair's weight ``(len(replay),)``: ``weight`` for the look-alikes
    (see the module doc; at most ``share`` of the replay, the nearest to a correction),
    the rest lowered so that the mean weight stays 1.

    Args:
        corrections: the corrections' prepared images, each ``(C, *spatial)``.
        replay: the replayed pairs' prepared images, each ``(C, *spatial)``, the same ``C``.
        share: the most of the replay given ``weight`` (rounded down to whole pairs).
        weight: their weight, at least 1.

    Returns:
        All ones when there is nothing to compare, no look-alike, or the share is less
        than one pair.

    Raises:
        ValueError: ``share * weight`` is not below 1: the rest would keep no weight.
    """
    if share * weight >= 1.0:
        raise ValueError(f"lookalike share {share} x weight {weight} leaves the rest no weight")
    n = len(replay)
    out = np.ones(n, dtype=np.float64)
    near = int(share * n)
    if near == 0 or not corrections or weight <= 1.0:
        return out
    c = np.stack([appearance(x) for x in corrections])
    r = np.stack([appearance(x) for x in replay])
    distance = np.sqrt(((r[:, None, :] - c[None, :, :]) ** 2).sum(axis=-1)).min(axis=1)
    near = min(near, int((distance < NEAR * np.median(distance)).sum()))
    if near == 0:
        return out
    out[:] = (n - weight * near) / (n - near)  # > 0, since near <= share * n
    out[np.argsort(distance, kind="stable")[:near]] = weight
    return out
