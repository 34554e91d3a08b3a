"""Score a model version on pairs: Dice, IoU, HD95 per class, Dice per group and per image."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from medloop.domain.learning import EvalSummary
from medloop.domain.ports import PairSample
from medloop.services.pairs import PairCache

if TYPE_CHECKING:
    from medloop.ml.inference import Predictor

__all__ = [
    "SampleScore",
    "evaluate_samples",
    "per_image_dice",
    "per_label_dice",
    "predicted_labels",
    "score_samples",
    "summarize",
]


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def predicted_labels(predictor: Predictor, sample: PairSample, cache: PairCache) -> np.ndarray:
    """``sample``'s uint8 label map ``(*spatial)`` on its input's grid, predicted from the
    cache's preprocessed image (read and prepared once for every version scored)."""
    probs = predictor.probabilities(cache.prepared(sample, predictor.manifest.preprocess))
    return predictor.finish(probs, cache.pair(sample).mask.shape).label_map


@dataclass(frozen=True)
class SampleScore:
    """One sample's scores per foreground class 1..K (HD95 NaN unless asked for)."""

    dice: tuple[float, ...]
    iou: tuple[float, ...]
    hd95: tuple[float, ...]
    group: str | None = None

    @property
    def mean_dice(self) -> float:
        """The image's Dice: the mean over its classes."""
        return float(np.mean(self.dice))


def score_samples(
    predictor: Predictor, samples: Sequence[PairSample], cache: PairCache, hd95: bool = False
) -> list[SampleScore]:
    """Each sample's scores, in sample order.

    Dice per image and class is ``2|P∩G| / (|P| + |G|)``, 1 when both are empty. HD95
    (slow) only with ``hd95``; else NaN.
    """
    from medloop.ml.metrics import score_label_maps

    k = predictor.manifest.labels.num_foreground
    scores = []
    for sample in samples:
        truth = cache.pair(sample)
        labels = predicted_labels(predictor, sample, cache)
        s = score_label_maps(labels, truth.mask, k + 1, truth.image.spacing, hd95=hd95)
        scores.append(SampleScore(s.dice, s.iou, s.hd95, sample.group))
    return scores


def summarize(scores: Sequence[SampleScore], k: int) -> tuple[EvalSummary, np.ndarray]:
    """Summary over ``scores`` (of ``k`` foreground classes) plus each image's Dice per
    class, ``(n, K)`` in their order. The summary averages images (not pixels), overall
    and per group."""
    groups: dict[str, list[float]] = defaultdict(list)
    for s in scores:
        if s.group is not None:
            groups[s.group].append(s.mean_dice)
    summary = EvalSummary(
        n_images=len(scores),
        mean_dice=float(np.mean([s.mean_dice for s in scores])) if scores else math.nan,
        dice=tuple(
            float(np.mean([s.dice[c] for s in scores])) if scores else math.nan for c in range(k)
        ),
        iou=tuple(
            float(np.mean([s.iou[c] for s in scores])) if scores else math.nan for c in range(k)
        ),
        hd95=tuple(_nanmean([s.hd95[c] for s in scores]) for c in range(k)),
        per_group={g: float(np.mean(v)) for g, v in sorted(groups.items())},
    )
    return summary, np.array([s.dice for s in scores], dtype=np.float64).reshape(len(scores), k)


def evaluate_samples(
    predictor: Predictor, samples: Sequence[PairSample], cache: PairCache, hd95: bool = False
) -> tuple[EvalSummary, np.ndarray]:
    """Summary over ``samples`` plus each image's Dice per class, ``(n, K)`` in sample
    order (:func:`score_samples`, then :func:`summarize`)."""
    k = predictor.manifest.labels.num_foreground
    return summarize(score_samples(predictor, samples, cache, hd95), k)


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
