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
    """A MONAI ``UNet`` in ``spec.spatial_dims`` dimensions.

    Input ``(B, in_channels, *spatial)`` -> logits ``(B, out_channels, *spatial)``; each
    spatial size a multiple of ``spec.divisors``.
    """
    strides = [s if len(set(s)) > 1 else s[0] for s in spec.level_strides]
    return UNet(
        spatial_dims=spec.spatial_dims,
        in_channels=spec.in_channels,
        out_channels=spec.out_channels,
        channels=spec.channels,
        strides=strides,  # type: ignore[arg-type]  # MONAI takes an int or a per-axis tuple
        num_res_units=spec.num_res_units,
        norm=spec.norm,
        dropout=spec.dropout,
    )


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
