"""Which reference pairs train, which select checkpoints, which the gate scores.

``val`` is halved by key hash: one half (``select``) picks the best checkpoint while
training, the other (``locked``) is never seen by training or selection and is what
the promotion gate scores — scoring on the selection half would favour the selected
model and reject every later candidate. ``test`` pairs are never returned.

A pair's half is a bit of its own key's hash, so it never changes when pairs are added
or removed: an image that selected a version's checkpoint never becomes one the gate
judges later candidates against that version on (alternating pairs in hash order, as
before, moved about half of them when one pair was added). Only a validation set so
small that one half would be empty is split by alternation. Likewise, without splits,
a pair is validation when its hash says so (one in ten).
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


def _bucket(sample: PairSample, n: int, part: int) -> int:
    """One of ``n`` buckets, from the ``part``-th 32 bits counted from the end of the
    key's hash. Different parts are independent of each other, and of the order by
    :func:`_rank` (which its first bits decide)."""
    digest = _rank(sample)
    return int(digest[len(digest) - 8 * (part + 1) : len(digest) - 8 * part], 16) % n


@dataclass(frozen=True)
class ReferenceSplit:
    """Reference pairs by role, each sorted by key."""

    train: tuple[PairSample, ...]
    select: tuple[PairSample, ...]
    locked: tuple[PairSample, ...]


def split_reference(samples: Sequence[PairSample], max_val: int | None = None) -> ReferenceSplit:
    """Split reference pairs into ``train``, ``select`` and ``locked`` (see the module doc).

    Uses the pairs' splits; when none has one, a pair is validation when its key's hash
    falls in one of ten buckets (the first pair by hash when none does). A validation pair
    is in ``select`` or ``locked`` by another bit of its hash; when that would leave a
    half empty, the pairs alternate in hash order. A single validation pair serves as
    both halves.

    Args:
        samples: the project's reference pairs.
        max_val: cap on each validation half (benchmarks on large sets; the first by hash).

    Raises:
        DatasetError: no training pairs.
    """
    if any(s.split for s in samples):
        train = [s for s in samples if s.split == "train"]
        val = [s for s in samples if s.split == "val"]
    else:
        ranked = sorted(samples, key=_rank)
        val = [s for s in ranked if _bucket(s, 10, 1) == 0]
        if not val and len(ranked) >= 2:
            val = ranked[:1]
        chosen = {s.key for s in val}
        train = [s for s in ranked if s.key not in chosen]
    if not train:
        raise DatasetError("no training pairs: the reference data has no pair in split 'train'")
    ranked = sorted(val, key=_rank)
    select = [s for s in ranked if _bucket(s, 2, 0) == 0]
    locked = [s for s in ranked if _bucket(s, 2, 0) == 1]
    if len(ranked) < 2:
        select, locked = ranked, ranked
    elif not select or not locked:
        select, locked = ranked[0::2], ranked[1::2]
    if max_val is not None:
        select, locked = select[:max_val], locked[:max_val]

    def by_key(xs: Sequence[PairSample]) -> tuple[PairSample, ...]:
        return tuple(sorted(xs, key=lambda s: s.key))

    return ReferenceSplit(by_key(train), by_key(select), by_key(locked))
