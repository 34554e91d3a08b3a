"""Which reference pairs train, which select checkpoints, which the gate scores.

``val`` is halved by key hash: one half (``select``) picks the best checkpoint while
training, the other (``locked``) is never seen by training or selection and is what
the promotion gate scores — scoring on the selection half would favour the selected
model and reject every later candidate. ``test`` pairs are never returned.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from medloop.domain.ports import PairSample
from medloop.errors import DatasetError

__all__ = ["ReferenceSplit", "split_reference"]


def _rank(sample: PairSample) -> str:
    return hashlib.sha256(sample.key.encode()).hexdigest()


@dataclass(frozen=True)
class ReferenceSplit:
    """Reference pairs by role, each sorted by key."""

    train: tuple[PairSample, ...]
    select: tuple[PairSample, ...]
    locked: tuple[PairSample, ...]


def split_reference(samples: Sequence[PairSample], max_val: int | None = None) -> ReferenceSplit:
    """Split reference pairs into ``train``, ``select`` and ``locked`` (see the module doc).

    Uses the pairs' splits; when none has one, every 10th pair (by key hash) is
    validation. With a single validation pair, it serves as both halves.

    Args:
        samples: the project's reference pairs.
        max_val: cap on each validation half (benchmarks on large sets).

    Raises:
        DatasetError: no training pairs.
    """
    if any(s.split for s in samples):
        train = [s for s in samples if s.split == "train"]
        val = [s for s in samples if s.split == "val"]
    else:
        ranked = sorted(samples, key=_rank)
        n_val = max(1, len(ranked) // 10) if len(ranked) >= 2 else 0
        val, train = ranked[:n_val], ranked[n_val:]
    if not train:
        raise DatasetError("no training pairs: the reference data has no pair in split 'train'")
    ranked = sorted(val, key=_rank)
    if len(ranked) >= 2:
        select, locked = ranked[0::2], ranked[1::2]
    else:
        select, locked = ranked, ranked
    if max_val is not None:
        select, locked = select[:max_val], locked[:max_val]

    def by_key(xs: Sequence[PairSample]) -> tuple[PairSample, ...]:
        return tuple(sorted(xs, key=lambda s: s.key))

    return ReferenceSplit(by_key(train), by_key(select), by_key(locked))
