"""Measure a dataset's :class:`~medloop.domain.fingerprint.Fingerprint` (once per content).

Reads every pair through a :class:`~medloop.services.pairs.PairCache` (so training
reuses what was read) and keeps the result in the artifact store under a key derived
from the pairs' sha256, so the same data is never measured twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from medloop.domain.fingerprint import ORDER_MIN_IMAGES, ClassStats, Fingerprint
from medloop.domain.ports import ArtifactStore, PairSample
from medloop.services.pairs import PairCache

__all__ = ["fingerprint", "measure_fingerprint"]

_SAMPLE = 200_000
"""Intensity percentiles are estimated from at most this many values per image."""


def _subsample(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return values if values.size <= _SAMPLE else values[rng.integers(0, values.size, _SAMPLE)]


def _ridge_widths(region: np.ndarray) -> np.ndarray:
    """Twice the inscribed radius along the ridge of ``region`` (structure widths, px), in
    C order.

    Computed on the region's bounding box grown by one pixel (within the image): that
    ring is background, so no pixel farther out is nearer to the region, and the
    filters see what they would see on the whole image. The same values, in the same
    order; a breast-ultrasound lesion's box is a small part of its image.
    """
    boxes = ndimage.find_objects(region.astype(np.uint8))
    if not boxes or boxes[0] is None:
        return np.zeros(0)
    grown = tuple(
        slice(max(0, b.start - 1), min(n, b.stop + 1))
        for b, n in zip(boxes[0], region.shape, strict=True)
    )
    sub = region[grown]
    dist = ndimage.distance_transform_edt(sub)
    ridge = sub & (dist >= ndimage.maximum_filter(dist, size=3))
    return 2.0 * dist[ridge]


_PROFILE_BINS = 16


def _profiles(pixels: np.ndarray) -> list[np.ndarray]:
    """Per spatial axis, the mean intensity along it, ``(_PROFILE_BINS,)`` each.

    ``pixels``: ``(*spatial, C)``; channels are averaged and the image z-scored first.
    """
    gray = pixels.astype(np.float32, copy=False).mean(axis=-1)
    gray = (gray - gray.mean()) / (float(gray.std()) or 1.0)
    out = []
    for axis in range(gray.ndim):
        profile = gray.mean(axis=tuple(a for a in range(gray.ndim) if a != axis))
        at = np.linspace(0, profile.size - 1, _PROFILE_BINS)
        out.append(np.interp(at, np.arange(profile.size), profile))
    return out


def _profile_asymmetry(profiles: list[list[np.ndarray]]) -> tuple[float, ...]:
    """See :attr:`Fingerprint.profile_asymmetry`; ``profiles[i][axis]`` from :func:`_profiles`."""
    out = []
    for axis in range(len(profiles[0])):
        mean = np.mean([p[axis] for p in profiles], axis=0)
        out.append(float(np.sqrt(np.mean((mean - mean[::-1]) ** 2)) / 2))
    return tuple(out)


def _label_order(masks: list[np.ndarray], num_foreground: int) -> tuple[float, ...]:
    """See :attr:`Fingerprint.label_order`; ``masks``: label maps ``(*spatial)``."""
    if num_foreground < 2 or not masks:
        return ()
    values = list(range(1, num_foreground + 1))
    # (images, labels, axes) centroids, NaN where an image lacks the label (scipy divides
    # by its zero voxel count: expected, so not warned about).
    with np.errstate(invalid="ignore", divide="ignore"):
        centroids = np.array(
            [
                np.array(ndimage.center_of_mass(m > 0, labels=m, index=values), dtype=float)
                for m in masks
            ]
        )
    lowest: np.ndarray | None = None
    for a in range(num_foreground):
        for b in range(a + 1, num_foreground):
            both = ~np.isnan(centroids[:, [a, b], 0]).any(axis=1)
            if both.sum() < ORDER_MIN_IMAGES:
                continue
            diff = centroids[both, b] - centroids[both, a]  # (images, axes)
            usual = np.maximum((diff > 0).mean(axis=0), (diff < 0).mean(axis=0))
            lowest = usual if lowest is None else np.minimum(lowest, usual)
    return () if lowest is None else tuple(float(v) for v in lowest)


def _class_stats(masks: list[np.ndarray], value: int) -> ClassStats:
    structure = np.ones((3,) * masks[0].ndim, dtype=bool)
    n_with, counts, extents, widths, largest = 0, [], [], [], []
    for mask in masks:
        region = mask == value
        if not region.any():
            continue
        n_with += 1
        comp, n = ndimage.label(region, structure=structure)
        counts.append(n)
        sizes = np.bincount(comp.ravel())[1:]
        largest.append(float(sizes.max()))
        for box in ndimage.find_objects(comp):
            if box is not None:
                extents.append(max(s.stop - s.start for s in box))
        w = _ridge_widths(region)
        if w.size:
            widths.append(float(np.median(w)))
    if not n_with:
        return ClassStats(value, 0.0, 0.0, 0.0, (0.0, 0.0, 0.0), 0.0, 0.0)
    p10, p50, p90 = (float(v) for v in np.percentile(extents, [10, 50, 90]))
    return ClassStats(
        value=value,
        image_share=n_with / len(masks),
        components=float(np.median(counts)),
        single_share=float(np.mean([c == 1 for c in counts])),
        extent=(p10, p50, p90),
        thickness=float(np.percentile(widths, 10)) if widths else 0.0,
        largest_size=float(np.percentile(largest, 5)),
    )


def measure_fingerprint(
    samples: Sequence[PairSample], cache: PairCache, num_foreground: int
) -> Fingerprint:
    """Read every pair of ``samples`` and measure the dataset (see :class:`Fingerprint`)."""
    pairs = [cache.pair(s) for s in samples]
    masks = [p.mask for p in pairs]
    dims = pairs[0].image.ndim
    shapes = np.array([p.image.shape for p in pairs])
    spacings = [p.image.spacing for p in pairs]
    rng = np.random.default_rng(0)
    values, fg_values, gaps, profiles = [], [], [], []
    for p in pairs:
        profiles.append(_profiles(p.image.pixels))
        px = p.image.pixels.astype(np.float32, copy=False)
        flat = px.reshape(-1)
        values.append(_subsample(flat, rng))
        fg = px[p.mask > 0].reshape(-1)
        if fg.size:
            fg_values.append(_subsample(fg, rng))
        if (p.mask > 0).any():
            w = _ridge_widths(p.mask == 0)
            if w.size:
                gaps.append(float(np.median(w)))
    all_values = np.concatenate(values)
    fg_all = np.concatenate(fg_values) if fg_values else all_values
    lo, mid, hi = (float(v) for v in np.percentile(all_values, [0.5, 50, 99.5]))
    f_lo, f_hi = (float(v) for v in np.percentile(fg_all, [0.5, 99.5]))
    signed = any(p.image.pixels.dtype.kind in "fi" for p in pairs)
    return Fingerprint(
        n_images=len(pairs),
        spatial_dims=dims,
        shape_median=tuple(float(v) for v in np.median(shapes, axis=0)),
        shape_min=tuple(int(v) for v in shapes.min(axis=0)),
        shape_max=tuple(int(v) for v in shapes.max(axis=0)),
        spacing_median=(
            tuple(float(v) for v in np.median(np.array(spacings), axis=0))
            if all(s is not None for s in spacings)
            else None
        ),
        channels=max(p.image.channels for p in pairs),
        has_color=any(
            p.image.channels == 3 and not (p.image.pixels[..., 0] == p.image.pixels[..., 1]).all()
            for p in pairs
        ),
        intensity=(lo, mid, hi),
        foreground_intensity=(f_lo, f_hi, float(fg_all.mean()), float(fg_all.std() or 1.0)),
        ct_like=signed and lo < -500 and hi - lo > 500,
        empty_share=float(np.mean([not (m > 0).any() for m in masks])),
        gap=float(np.median(gaps)) if gaps else 0.0,
        classes=tuple(_class_stats(masks, v) for v in range(1, num_foreground + 1)),
        profile_asymmetry=_profile_asymmetry(profiles),
        label_order=_label_order(masks, num_foreground),
    )


def _content_key(samples: Sequence[PairSample], num_foreground: int) -> str:
    ident = [(s.key, s.image_sha256, s.mask_sha256, s.frame) for s in samples]
    # "v": the fingerprint's own version; a new figure makes earlier ones be measured again.
    blob = json.dumps({"v": 3, "k": num_foreground, "pairs": sorted(ident)})
    return "fingerprint-" + hashlib.sha256(blob.encode()).hexdigest()[:24]


def fingerprint(
    samples: Sequence[PairSample], cache: PairCache, num_foreground: int, store: ArtifactStore
) -> Fingerprint:
    """The fingerprint of ``samples``, measured once and then read from ``store``."""
    slot = store.checkpoint(_content_key(samples, num_foreground))
    saved = slot.load()
    if saved is not None:
        return Fingerprint.from_dict(json.loads(saved))
    fp = measure_fingerprint(samples, cache, num_foreground)
    slot.save(json.dumps(fp.to_dict()).encode())
    return fp
