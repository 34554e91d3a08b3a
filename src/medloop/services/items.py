"""Read image/mask pairs once and turn them into preprocessed training items (cached)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medloop.domain.image import Image
from medloop.domain.model import PreprocessSpec
from medloop.io import read_image, read_mask, sha256_file

if TYPE_CHECKING:
    from medloop.ml.data import TrainItem

__all__ = ["LoadedPair", "PairLoader"]


@dataclass(frozen=True)
class LoadedPair:
    """An image and its label map ``(H, W)`` uint8 with both files' sha256."""

    key: str
    image: Image
    mask: np.ndarray
    image_sha256: str
    mask_sha256: str
    group: str | None = None


class PairLoader:
    """Reads pairs and preprocesses them, caching both by path (benchmarks reread a lot)."""

    def __init__(self, num_foreground: int) -> None:
        self.num_foreground = num_foreground
        self._pairs: dict[tuple[Path, Path], LoadedPair] = {}
        self._prepared: dict[tuple[Path, PreprocessSpec], np.ndarray] = {}

    def pair(self, key: str, image: Path, mask: Path, group: str | None = None) -> LoadedPair:
        cached = self._pairs.get((image, mask))
        if cached is None:
            img = read_image(image)
            msk = read_mask(mask, num_foreground=self.num_foreground, expected_shape=img.shape)
            cached = LoadedPair(key, img, msk, sha256_file(image), sha256_file(mask), group)
            self._pairs[(image, mask)] = cached
        return cached

    def prepared(self, pair: LoadedPair, image_path: Path, spec: PreprocessSpec) -> np.ndarray:
        from medloop.ml.preprocess import prepare

        cached = self._prepared.get((image_path, spec))
        if cached is None:
            cached = prepare(pair.image, spec)
            self._prepared[(image_path, spec)] = cached
        return cached

    def item(
        self, key: str, image: Path, mask: Path, spec: PreprocessSpec, weight: float = 1.0
    ) -> TrainItem:
        from medloop.ml.data import TrainItem

        pair = self.pair(key, image, mask)
        return TrainItem(key, self.prepared(pair, image, spec), pair.mask, weight)
