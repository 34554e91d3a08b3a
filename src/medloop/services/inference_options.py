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

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from medloop.domain.model import ModelManifest
from medloop.domain.ports import PairSample
from medloop.services.evaluation import predicted_labels
from medloop.services.pairs import PairCache

__all__ = [
    "FLIPS_SHARE",
    "InferenceCost",
    "choose_inference_options",
    "flip_candidates",
    "inference_cost",
]

SMALL_SHARES = (0.25, 0.5, 1.0)
"""Shares of the smallest real object tried as the size below which components go."""
FLIPS_SHARE = 0.2
"""Test-time flips are tried only when their extra passes, choosing and gating, are
estimated to fit in this share of a run's budget."""
PROBE_IMAGES = 3
"""Selection images timed to estimate a pass."""


def flip_candidates(manifest: ModelManifest) -> tuple[int, ...]:
    """The axes training flipped along (every axis for a plan that does not say)."""
    axes = manifest.plan.get("mirror_axes")
    if axes is None:
        return tuple(range(manifest.spatial_dims))
    return tuple(sorted(int(a) for a in axes))


@dataclass(frozen=True)
class InferenceCost:
    """What scoring after training will take, estimated before it starts.

    Attributes:
        seconds: to set aside from training: one plain pass over the selection and
            locked sets, plus the flips' passes when they are tried.
        try_flips: whether test-time flips are tried.
        note: why they are not (for the plan's reasons); ``None`` when they are, or
            when there are none to try.
        select_pass: seconds of one plain pass over the selection set, which is what
            one validation during training costs (0 without a budget: not measured).
    """

    seconds: float
    try_flips: bool
    note: str | None
    select_pass: float = 0.0


def _pass_seconds(
    manifest: ModelManifest,
    select: Sequence[PairSample],
    locked: Sequence[PairSample],
    cache: PairCache,
    device: str | None,
) -> tuple[float, float]:
    """Seconds of one plain pass over ``select`` and over ``locked``: the network (its
    cost does not depend on its weights) timed on a few selection images, scaled by
    the prepared images' sizes."""
    from medloop.ml.inference import Predictor
    from medloop.ml.network import build_network

    if not select:
        return 0.0, 0.0
    bare = replace(manifest, keep_largest=(), min_size=(), test_time_flips=())
    predictor = Predictor(bare, build_network(bare.network).state_dict(), device)
    predicted_labels(predictor, select[0], cache)  # warm-up, untimed
    probe = list(select[1 : PROBE_IMAGES + 1]) or [select[0]]
    size = sum(cache.prepared(s, bare.preprocess).size for s in probe)  # prepared untimed
    start = time.perf_counter()
    for sample in probe:
        predicted_labels(predictor, sample, cache)
    per_value = (time.perf_counter() - start) / max(1, size)

    def total(samples: Sequence[PairSample]) -> float:
        return per_value * sum(cache.prepared(s, bare.preprocess).size for s in samples)

    return total(select), total(locked)


def inference_cost(
    manifest: ModelManifest,
    select: Sequence[PairSample],
    locked: Sequence[PairSample],
    cache: PairCache,
    device: str | None,
    budget_s: float | None,
) -> InferenceCost:
    """How much of a run's budget the scoring after training needs, and whether the
    test-time flips' ``2**k`` passes fit in :data:`FLIPS_SHARE` of it (``budget_s``
    ``None``: no budget, flips always tried, nothing set aside)."""
    flips = flip_candidates(manifest)
    if budget_s is None:
        return InferenceCost(0.0, bool(flips), None)
    t_select, t_locked = _pass_seconds(manifest, select, locked, cache, device)
    plain = t_select + t_locked
    if not flips:
        return InferenceCost(plain, False, None, t_select)
    passes = 2 ** len(flips)
    extra = passes * t_select + (passes - 1) * t_locked
    if extra <= FLIPS_SHARE * budget_s:
        return InferenceCost(plain + extra, True, None, t_select)
    return InferenceCost(
        plain,
        False,
        f"test-time flips along axes {list(flips)} not tried: their {passes} passes would "
        f"take ~{extra:.0f} s, more than {FLIPS_SHARE:.0%} of the {budget_s:.0f} s budget",
        t_select,
    )


def raw_label_maps(
    manifest: ModelManifest,
    state_dict: dict[str, Any],
    select: Sequence[PairSample],
    cache: PairCache,
    device: str | None,
) -> list[np.ndarray]:
    """Each selection pair's label map ``(*spatial)`` uint8 before post-processing."""
    from medloop.ml.inference import Predictor

    predictor = Predictor(replace(manifest, keep_largest=(), min_size=()), state_dict, device)
    return [predicted_labels(predictor, sample, cache) for sample in select]


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
    flips_note: str | None = None,
) -> ModelManifest:
    """``manifest`` with the test-time flips and post-processing the selection set supports
    (see the module doc); the flips' verdict is added to the plan's reasons. With
    ``flips_note`` (why not: :func:`inference_cost`) flips are not tried and the note
    is the reason."""
    largest = tuple(int(v) for v in manifest.plan.get("keep_largest_candidates", ()))
    small = [(int(v), int(n)) for v, n in manifest.plan.get("min_size_candidates", ())]
    flips = () if flips_note else flip_candidates(manifest)
    if flips_note:
        plan = {**manifest.plan, "reasons": [*manifest.plan.get("reasons", ()), flips_note]}
        manifest = replace(manifest, plan=plan)
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
