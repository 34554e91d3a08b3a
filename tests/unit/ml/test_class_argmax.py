"""The class index by comparisons is torch's argmax: the same labels, ties to the first."""

from __future__ import annotations

import pytest
import torch

from medloop.ml.reductions import class_argmax


@pytest.mark.parametrize(
    ("shape", "dim"),
    [((2, 50, 60), 0), ((3, 12, 16, 10), 0), ((5, 33, 17), 0), ((4, 3, 20, 20), 1), ((1, 9), 0)],
)
def test_it_is_argmax_with_ties_to_the_first_class(shape: tuple[int, ...], dim: int) -> None:
    g = torch.Generator().manual_seed(len(shape) + shape[dim])
    scores = torch.softmax(torch.randn(shape, generator=g), dim)
    # Ties: quantised scores tie often, and a block where every class ties.
    scores = (scores * 4).round() / 4
    block = [slice(None)] * len(shape)
    block[-1] = slice(0, 3)
    scores[tuple(block)] = 0.5
    got = class_argmax(scores, dim)
    assert got.dtype == torch.uint8
    assert torch.equal(got, scores.argmax(dim).to(torch.uint8))
    assert got[..., :3].eq(0).all()  # a full tie goes to the first class
