"""Test-time mirroring: a network's logits averaged over the flips of its input.

The image is flipped along every subset of the chosen spatial axes (``2**k`` forward
passes for ``k`` axes), each output flipped back, and the logits averaged, as nnU-Net
does. Only axes training flipped along are candidates (the network has seen those
images); :func:`medloop.services.inference_options.choose_inference_options` keeps them only when
the selection set scores higher with them.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations

import torch

__all__ = ["Mirrored", "flip_subsets"]


def flip_subsets(axes: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every subset of ``axes``, the empty one (the image as it is) first."""
    return [c for k in range(len(axes) + 1) for c in combinations(axes, k)]


class Mirrored:
    """``model`` averaged over flips of its input along spatial ``axes``.

    Args:
        model: ``(B, C, *spatial)`` -> logits ``(B, K+1, *spatial)``.
        axes: spatial axes (0 = the first spatial axis) to flip along.
    """

    def __init__(self, model: Callable[[torch.Tensor], torch.Tensor], axes: tuple[int, ...]):
        self.model = model
        self.subsets = [tuple(a + 2 for a in s) for s in flip_subsets(axes)]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Mean float32 logits ``(B, K+1, *spatial)`` over the flips of ``x``."""
        total: torch.Tensor | None = None
        for dims in self.subsets:
            out = self.model(torch.flip(x, dims) if dims else x).float()
            out = torch.flip(out, dims) if dims else out
            total = out if total is None else total.add_(out)
        assert total is not None
        return total.div_(len(self.subsets))
