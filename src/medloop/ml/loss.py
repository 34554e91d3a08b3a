"""Dice + cross-entropy with per-sample weights (MONAI ``DiceLoss`` per sample)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss

__all__ = ["WeightedDiceCELoss"]


class WeightedDiceCELoss(torch.nn.Module):
    """``sum_i w_i (dice_i + ce_i) / sum_i w_i`` over the batch.

    ``dice_i`` is the soft Dice loss of sample ``i`` over the foreground classes,
    ``ce_i`` its mean pixel cross-entropy. A correction with weight 8 in a batch of
    reference samples of weight 1 pulls the gradient eight times as hard.
    """

    def __init__(self) -> None:
        super().__init__()
        self.dice = DiceLoss(
            include_background=False,
            to_onehot_y=True,
            softmax=True,
            reduction="none",
            smooth_nr=1.0,
            smooth_dr=1.0,
        )

    def per_sample(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Unweighted loss per sample: logits ``(B, K+1, h, w)``, target ``(B, 1, h, w)`` -> ``(B,)``."""
        dice = self.dice(logits, target).flatten(1).mean(1)
        ce = F.cross_entropy(logits, target[:, 0], reduction="none").flatten(1).mean(1)
        return dice + ce

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        losses = self.per_sample(logits.float(), target)
        w = weights.to(losses.device, losses.dtype)
        return (losses * w).sum() / w.sum()
