"""Keeping what the parent knew while a fine-tune learns the corrections.

The remedies a fine-tune can combine (each off at 0, measured in ``bench forgetting``):

* **distillation** — on replayed reference patches, the fine-tuned network's class
  probabilities are pulled toward the parent's (KL divergence; the parent runs as a
  frozen teacher);
* **L2-SP** — a pull of the weights toward the parent's (the starting point);
* **EMA** — the fine-tune returns an exponential moving average of its weights;
* **encoder learning rate** — the down-sampling path learns at a fraction of the rate
  (features shared across stains or sites move less).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

__all__ = ["Ema", "Teacher", "encoder_parameter_names", "l2sp_penalty"]


def encoder_parameter_names(model: torch.nn.Module) -> set[str]:
    """Names of the parameters of a MONAI ``UNet``'s down-sampling path and bottom.

    MONAI builds each level as ``Sequential(down, SkipConnection(submodule), up)``, so a
    parameter's path names the level's part after each ``model``/``submodule``: the last
    one is ``0`` for a down block, ``2`` for an up block, and not a number inside the
    innermost (bottom) block, which counts as encoder.
    """
    names = set()
    for name, _ in model.named_parameters():
        parts = name.split(".")
        steps = [parts[i + 1] for i, p in enumerate(parts[:-1]) if p in ("model", "submodule")]
        if steps and steps[-1] != "2":
            names.add(name)
    return names


def l2sp_penalty(model: torch.nn.Module, anchor: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum of squared differences between ``model``'s parameters and ``anchor`` (same names)."""
    total = torch.zeros((), device=next(model.parameters()).device)
    for name, p in model.named_parameters():
        total = total + ((p - anchor[name]) ** 2).sum()
    return total


class Teacher:
    """The parent network, frozen, for distillation on replayed patches."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def loss(self, student_logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Mean voxel-wise KL(teacher || student) of the class probabilities."""
        with torch.no_grad():
            target = torch.softmax(self.model(x).float(), dim=1)
        log_p = torch.log_softmax(student_logits.float(), dim=1)
        return F.kl_div(log_p, target, reduction="none").sum(1).mean()


class Ema:
    """An exponential moving average of a model's weights (buffers copied as they are)."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(self.decay).add_(v.detach(), alpha=1 - self.decay)
            else:
                self.shadow[k].copy_(v)

    def weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.shadow.items()}
