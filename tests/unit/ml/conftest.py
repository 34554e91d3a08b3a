"""Tiny synthetic segmentation tasks: bright discs on noise, learnable in seconds on a CPU."""

from __future__ import annotations

import numpy as np
import pytest

from medloop.domain.labels import LabelSet
from medloop.domain.model import ModelManifest, NetworkSpec, PreprocessSpec
from medloop.ml.data import TrainItem
from medloop.ml.preprocess import prepare_pixels


def disc_pair(
    rng: np.random.Generator, size: int = 48, n: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """``(H, W, 1)`` uint8 image with ``n`` bright discs and its 0/1 mask."""
    yy, xx = np.mgrid[:size, :size]
    mask = np.zeros((size, size), np.uint8)
    for _ in range(n):
        cy, cx, r = rng.integers(8, size - 8), rng.integers(8, size - 8), rng.integers(3, 7)
        mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
    img = rng.normal(60, 15, (size, size)) + mask * 120.0
    return np.clip(img, 0, 255).astype(np.uint8)[..., None], mask


@pytest.fixture
def manifest() -> ModelManifest:
    return ModelManifest(
        NetworkSpec(1, 2, (8, 16, 32), num_res_units=1),
        PreprocessSpec(),
        LabelSet.from_names(["disc"]),
        (32, 32),
    )


def make_items(
    seed: int, count: int, weight: float = 1.0, invert_mask: bool = False
) -> list[TrainItem]:
    rng = np.random.default_rng(seed)
    items = []
    for i in range(count):
        img, m = disc_pair(rng)
        if invert_mask:
            m = np.zeros_like(m)  # a "correction" that says: there is nothing here
        items.append(TrainItem(f"s{seed}-{i}", prepare_pixels(img, PreprocessSpec()), m, weight))
    return items
