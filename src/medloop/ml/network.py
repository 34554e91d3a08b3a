"""Build the segmentation network from a :class:`NetworkSpec` (MONAI ``UNet``).

MONAI's ``UNet`` is an FCN with residual units and learned (transposed-conv)
upsampling; width and depth come from ``spec.channels``.
"""

from __future__ import annotations

import torch
from monai.networks.nets import UNet

from medloop.domain.model import NetworkSpec

__all__ = ["build_network", "count_parameters"]


def build_network(spec: NetworkSpec) -> torch.nn.Module:
    """A 2D MONAI ``UNet``: input ``(B, in_channels, H, W)`` -> logits ``(B, out_channels, H, W)``."""
    return UNet(
        spatial_dims=2,
        in_channels=spec.in_channels,
        out_channels=spec.out_channels,
        channels=spec.channels,
        strides=(2,) * (len(spec.channels) - 1),
        num_res_units=spec.num_res_units,
        norm=spec.norm,
        dropout=spec.dropout,
    )


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
