"""What a fine-tune trains on: the corrections, weighted, and a replay of the reference data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from medloop.domain.model import DataRef, ModelManifest
from medloop.domain.ports import CorrectionSample, PairSample
from medloop.domain.settings import LearningPolicy, Strategy
from medloop.services.lookalikes import lookalike_weights
from medloop.services.pairs import PairCache

if TYPE_CHECKING:
    from medloop.ml.data import TrainItem

__all__ = ["finetune_items"]


def finetune_items(
    policy: LearningPolicy,
    manifest: ModelManifest,
    trained: Sequence[CorrectionSample],
    reference: Sequence[PairSample],
    cache: PairCache,
    n_corrections: int,
) -> tuple[list[TrainItem], list[DataRef]]:
    """Corrections at weight *w* (weighted-replay) or 1, plus the strategy's reference pairs.

    Weighted-replay draws ``replay_size`` reference training pairs, seeded by the policy's
    seed and ``n_corrections`` (every correction so far, held-out ones included), weights
    those that look like the corrections and unlike the rest of the replay above the
    others at a mean weight of 1 (:mod:`medloop.services.lookalikes`), and marks them
    for distillation from the parent; ``corrections-only`` replays none and the other
    strategies all of them at weight 1. Returns the training items and their lineage
    refs (with each one's weight).
    """
    strategy = policy.strategy
    w = policy.correction_weight if strategy == Strategy.WEIGHTED_REPLAY else 1.0
    if strategy == Strategy.WEIGHTED_REPLAY:
        rng = np.random.default_rng([policy.seed, n_corrections])
        n = min(policy.replay_size, len(reference))
        pick = sorted(rng.choice(len(reference), size=n, replace=False).tolist()) if n else []
        replay = [reference[i] for i in pick]
    elif strategy == Strategy.CORRECTIONS_ONLY:
        replay = []
    else:
        replay = list(reference)
    pre = manifest.preprocess
    k = manifest.labels.num_classes
    items = [cache.item(c, pre, k, w) for c in trained]
    refs = [DataRef(c.id, c.image_sha256, c.mask_sha256, "correction", w) for c in trained]
    replayed = [cache.item(s, pre, k, 1.0) for s in replay]
    weights = np.ones(len(replayed))
    if strategy == Strategy.WEIGHTED_REPLAY:
        weights = lookalike_weights(
            [it.image for it in items],
            [it.image for it in replayed],
            policy.lookalike_share,
            policy.lookalike_weight,
        )
    items += [
        replace(it, weight=float(v), distill=True) for it, v in zip(replayed, weights, strict=True)
    ]
    refs += [
        DataRef(s.key, s.image_sha256, s.mask_sha256, "replay", float(v))
        for s, v in zip(replay, weights, strict=True)
    ]
    return items, refs
