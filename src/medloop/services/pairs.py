"""Pairs loaded once through a :class:`~medloop.domain.ports.TrainingData`, and their training items.

Loading and preprocessing dominate the engine's set-up time, and benchmarks and a
long-running server fine-tune the same pairs again and again, so both are cached
by content (key and sha256), never by path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from medloop.domain.model import PreprocessSpec
from medloop.domain.ports import LoadedPair, PairSample, TrainingData

if TYPE_CHECKING:
    from medloop.ml.data import TrainItem

__all__ = ["PairCache"]

_Id = tuple[str, str, str, int]


def _identity(sample: PairSample) -> _Id:
    return (sample.key, sample.image_sha256, sample.mask_sha256, sample.frame)


class PairCache:
    """Reads pairs through ``data`` once and keeps them and their preprocessed arrays.

    Args:
        data: where the pixels come from.
    """

    def __init__(self, data: TrainingData) -> None:
        self.data = data
        self._pairs: dict[_Id, LoadedPair] = {}
        self._prepared: dict[tuple[_Id, PreprocessSpec], np.ndarray] = {}
        self._masks: dict[tuple[_Id, PreprocessSpec], np.ndarray] = {}

    def rebind(self, data: TrainingData) -> PairCache:
        """A cache sharing this one's contents that reads misses through ``data``.

        Entries are keyed by content, so several sources of the same files (a benchmark's
        registries, one per strategy) can share what was already loaded.
        """
        other = PairCache(data)
        other._pairs, other._prepared, other._masks = self._pairs, self._prepared, self._masks
        return other

    def pair(self, sample: PairSample) -> LoadedPair:
        """The image and label map of ``sample`` (read on first use)."""
        ident = _identity(sample)
        cached = self._pairs.get(ident)
        if cached is None:
            cached = self.data.load(sample)
            self._pairs[ident] = cached
        return cached

    def prepared(self, sample: PairSample, spec: PreprocessSpec) -> np.ndarray:
        """The network input of ``sample``'s image under ``spec``: ``(C, *grid)`` float32."""
        from medloop.ml.preprocess import prepare

        key = (_identity(sample), spec)
        cached = self._prepared.get(key)
        if cached is None:
            cached = prepare(self.pair(sample).image, spec)
            self._prepared[key] = cached
        return cached

    def prepared_mask(
        self, sample: PairSample, spec: PreprocessSpec, num_classes: int
    ) -> np.ndarray:
        """``sample``'s label map on the network's grid under ``spec``."""
        from medloop.ml.preprocess import prepare_mask

        key = (_identity(sample), spec)
        cached = self._masks.get(key)
        if cached is None:
            pair = self.pair(sample)
            cached = prepare_mask(pair.mask, spec, pair.image.spacing, num_classes)
            self._masks[key] = cached
        return cached

    def item(
        self, sample: PairSample, spec: PreprocessSpec, num_classes: int, weight: float = 1.0
    ) -> TrainItem:
        """``sample`` as a training item on the network's grid, with per-sample ``weight``."""
        from medloop.ml.data import TrainItem

        return TrainItem(
            sample.key,
            self.prepared(sample, spec),
            self.prepared_mask(sample, spec, num_classes),
            weight,
        )
