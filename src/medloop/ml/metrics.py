"""Segmentation metrics per image and class: Dice, IoU (MONAI) and HD95 (MONAI).

Convention (``../shared/data/README.md``): Dice of an image is
``2|P∩G| / (|P| + |G|)``, and 1 when both are empty.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from monai.metrics import compute_dice, compute_hausdorff_distance, compute_iou
from monai.networks.utils import one_hot

__all__ = ["ImageScores", "score_label_maps"]


@dataclass(frozen=True)
class ImageScores:
    """Scores of one predicted label map against its reference, per foreground class 1..K.

    ``hd95`` is in mm when the spacing is known, else in pixels/voxels; NaN when either
    side is empty for that class.
    """

    dice: tuple[float, ...]
    iou: tuple[float, ...]
    hd95: tuple[float, ...]

    @property
    def mean_dice(self) -> float:
        return float(np.mean(self.dice))


def score_label_maps(
    pred: np.ndarray,
    ref: np.ndarray,
    num_classes: int,
    spacing: tuple[float, ...] | None = None,
    hd95: bool = True,
) -> ImageScores:
    """Score ``pred`` against ``ref`` (integer label maps ``(*spatial)``, values < num_classes).

    Args:
        spacing: mm per pixel/voxel; HD95 is then in mm.
        hd95: compute HD95 (the slow part); ``False`` leaves it NaN.
    """
    if pred.shape != ref.shape:
        raise ValueError(f"prediction {pred.shape} and reference {ref.shape} differ in size")
    p = one_hot(torch.from_numpy(pred.astype(np.int64))[None, None], num_classes, dim=1)
    g = one_hot(torch.from_numpy(ref.astype(np.int64))[None, None], num_classes, dim=1)
    dice = compute_dice(p, g, include_background=False, ignore_empty=False)[0]
    iou = compute_iou(p, g, include_background=False, ignore_empty=False)[0]
    hd: list[float] = []
    for c in range(1, num_classes):
        if not hd95 or not bool(p[0, c].any()) or not bool(g[0, c].any()):
            hd.append(math.nan)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v = compute_hausdorff_distance(
                p[:, c : c + 1],
                g[:, c : c + 1],
                include_background=True,
                percentile=95,
                spacing=None if spacing is None else list(spacing),
            )
        hd.append(float(v.reshape(-1)[0]))
    return ImageScores(
        dice=tuple(float(v) for v in dice), iou=tuple(float(v) for v in iou), hd95=tuple(hd)
    )
