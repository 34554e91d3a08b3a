"""Score a model version on pairs: Dice, IoU, HD95 per class, Dice per group and per image."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from medloop.domain.learning import EvalSummary
from medloop.domain.ports import PairSample
from medloop.services.pairs import PairCache

if TYPE_CHECKING:
    from medloop.ml.inference import Predictor

__all__ = ["evaluate_samples", "per_image_dice", "per_label_dice", "predicted_labels"]


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def predicted_labels(predictor: Predictor, sample: PairSample, cache: PairCache) -> np.ndarray:
    """``sample``'s uint8 label map ``(*spatial)`` on its input's grid, predicted from the
    cache's preprocessed image (read and prepared once for every version scored)."""
    probs = predictor.probabilities(cache.prepared(sample, predictor.manifest.preprocess))
    return predictor.finish(probs, cache.pair(sample).mask.shape).label_map


def evaluate_samples(
    predictor: Predictor, samples: Sequence[PairSample], cache: PairCache, hd95: bool = False
) -> tuple[EvalSummary, np.ndarray]:
    """Summary over ``samples`` plus each image's Dice per class, ``(n, K)`` in sample order.

    Dice per image and class is ``2|P∩G| / (|P| + |G|)``, 1 when both are empty; an
    image's Dice is the mean over its classes; the summary averages images (not
    pixels), overall and per group. HD95 (slow) only with ``hd95``; else NaN.
    """
    from medloop.ml.metrics import score_label_maps

    k = predictor.manifest.labels.num_foreground
    dice: list[list[float]] = [[] for _ in range(k)]
    iou: list[list[float]] = [[] for _ in range(k)]
    hd: list[list[float]] = [[] for _ in range(k)]
    per_image: list[float] = []
    per_class: list[tuple[float, ...]] = []
    groups: dict[str, list[float]] = defaultdict(list)
    for sample in samples:
        truth = cache.pair(sample)
        labels = predicted_labels(predictor, sample, cache)
        s = score_label_maps(labels, truth.mask, k + 1, truth.image.spacing, hd95=hd95)
        for c in range(k):
            dice[c].append(s.dice[c])
            iou[c].append(s.iou[c])
            hd[c].append(s.hd95[c])
        per_image.append(s.mean_dice)
        per_class.append(s.dice)
        if sample.group is not None:
            groups[sample.group].append(s.mean_dice)
    summary = EvalSummary(
        n_images=len(per_image),
        mean_dice=float(np.mean(per_image)) if per_image else math.nan,
        dice=tuple(float(np.mean(d)) if d else math.nan for d in dice),
        iou=tuple(float(np.mean(d)) if d else math.nan for d in iou),
        hd95=tuple(_nanmean(d) for d in hd),
        per_group={g: float(np.mean(v)) for g, v in sorted(groups.items())},
    )
    return summary, np.array(per_class, dtype=np.float64).reshape(len(per_class), k)


def per_image_dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """Binary Dice of foreground (any label > 0) with the both-empty-is-1 convention."""
    p, g = pred > 0, ref > 0
    denom = int(p.sum() + g.sum())
    return 1.0 if denom == 0 else 2.0 * int((p & g).sum()) / denom


def per_label_dice(pred: np.ndarray, ref: np.ndarray, num_foreground: int) -> float:
    """Mean over labels ``1..K`` of each label's Dice (1 where both lack the label)."""
    scores = []
    for label in range(1, num_foreground + 1):
        p, g = pred == label, ref == label
        denom = int(p.sum() + g.sum())
        scores.append(1.0 if denom == 0 else 2.0 * int((p & g).sum()) / denom)
    return float(np.mean(scores))
