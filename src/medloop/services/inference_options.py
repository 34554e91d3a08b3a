"""A trained version's inference options, chosen on the selection half of ``val``.

Test-time flips (along the axes training flipped) are kept when the selection set's
mean Dice rises; then, per label, keeping only the largest component, and removing
components smaller than a share of the smallest real object, are kept when that
label's Dice does not fall (largest component) or rises (small components). The
network runs once without flips and once with them; every post-processing trial is
scored on those label maps, so choosing costs ``1 + 2**k`` passes over the selection
set, not one per trial.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from medloop.domain.model import ModelManifest
from medloop.domain.ports import PairSample
from medloop.services.pairs import PairCache

__all__ = ["choose_inference_options", "flip_candidates"]

SMALL_SHARES = (0.25, 0.5, 1.0)
"""Shares of the smallest real object tried as the size below which components go."""


def flip_candidates(manifest: ModelManifest) -> tuple[int, ...]:
    """The axes training flipped along (every axis for a plan that does not say)."""
    axes = manifest.plan.get("mirror_axes")
    if axes is None:
        return tuple(range(manifest.spatial_dims))
    return tuple(sorted(int(a) for a in axes))


def raw_label_maps(
    manifest: ModelManifest,
    state_dict: dict[str, Any],
    select: Sequence[PairSample],
    cache: PairCache,
    device: str | None,
) -> list[np.ndarray]:
    """Each selection pair's label map ``(*spatial)`` uint8 before post-processing."""
    from medloop.ml.inference import Predictor

    bare = replace(manifest, keep_largest=(), min_size=())
    predictor = Predictor(bare, state_dict, device)
    maps = []
    for sample in select:
        probs = predictor.probabilities(cache.prepared(sample, bare.preprocess))
        maps.append(predictor.finish(probs, cache.pair(sample).mask.shape).label_map)
    return maps


class _Scorer:
    """Per-class mean Dice ``(K,)`` of post-processed label maps on the selection set."""

    def __init__(self, select: Sequence[PairSample], cache: PairCache, k: int) -> None:
        self.pairs = [cache.pair(s) for s in select]
        self.k = k

    def __call__(
        self,
        maps: Sequence[np.ndarray],
        keep: tuple[int, ...] = (),
        small: tuple[tuple[int, int], ...] = (),
    ) -> np.ndarray:
        from medloop.ml.metrics import score_label_maps
        from medloop.ml.postprocess import postprocess

        rows = [
            score_label_maps(postprocess(m, keep, small), p.mask, self.k + 1, p.image.spacing).dice
            for m, p in zip(maps, self.pairs, strict=True)
        ]
        return np.mean(np.array(rows, dtype=np.float64).reshape(len(rows), self.k), axis=0)


def choose_inference_options(
    manifest: ModelManifest,
    state_dict: dict[str, Any],
    select: Sequence[PairSample],
    cache: PairCache,
    device: str | None,
) -> ModelManifest:
    """``manifest`` with the test-time flips and post-processing the selection set supports
    (see the module doc); the flips' verdict is added to the plan's reasons."""
    largest = tuple(int(v) for v in manifest.plan.get("keep_largest_candidates", ()))
    small = [(int(v), int(n)) for v, n in manifest.plan.get("min_size_candidates", ())]
    flips = flip_candidates(manifest)
    if not (largest or small or flips) or not select:
        return manifest
    manifest = replace(manifest, keep_largest=(), min_size=(), test_time_flips=())
    score = _Scorer(select, cache, manifest.labels.num_foreground)
    maps = raw_label_maps(manifest, state_dict, select, cache, device)
    best = score(maps)
    if flips:
        trial = replace(manifest, test_time_flips=flips)
        flipped = raw_label_maps(trial, state_dict, select, cache, device)
        result = score(flipped)
        kept = result.mean() > best.mean()
        verdict = (
            f"test-time flips along axes {list(flips)} ({2 ** len(flips)} passes): "
            f"selection Dice {best.mean():.3f} -> {result.mean():.3f}, "
            + ("kept" if kept else "not kept")
        )
        if kept:
            manifest, maps, best = trial, flipped, result
        del flipped
        plan = {**manifest.plan, "reasons": [*manifest.plan.get("reasons", ()), verdict]}
        manifest = replace(manifest, plan=plan)
    keep: tuple[int, ...] = ()
    for value in largest:
        result = score(maps, (*keep, value))
        if result[value - 1] >= best[value - 1]:
            keep, best = (*keep, value), result
    removed: tuple[tuple[int, int], ...] = ()
    for value, size in small:
        trials = [(*removed, (value, max(1, int(share * size)))) for share in SMALL_SHARES]
        results = [score(maps, keep, t) for t in trials]
        top = max(range(len(trials)), key=lambda i: results[i][value - 1])
        if results[top][value - 1] > best[value - 1]:
            removed, best = trials[top], results[top]
    return replace(manifest, keep_largest=keep, min_size=removed)
