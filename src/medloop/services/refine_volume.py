"""The label volume of one click interaction with a volume, kept up to date block by block.

A volume refine infers only a window around the new clicks (see
:meth:`~medloop.ml.interactive.RefineSession.refine_block`); :class:`VolumeLabels` merges
that block into the interaction's current label volume and keeps, without scanning the
whole volume, what the answer needs: per-label Dice against the automatic label map,
the voxels that differ from it, and the bounding box of what the last request changed
(:class:`ChangedBlock`, sent gzip-compressed). Plain numpy, no model.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass

import numpy as np

__all__ = ["ChangedBlock", "LabelDice", "VolumeLabels", "changed_block", "label_dice", "union"]

Region = tuple[slice, ...]


@dataclass(frozen=True)
class LabelDice:
    """One label's Dice between the refined and the automatic label map."""

    label: int
    name: str
    dice: float


@dataclass(frozen=True)
class ChangedBlock:
    """The part of a label volume a request changed: ``data`` is the gzip of the uint8
    labels of the block at ``offset`` (voxel indices) with ``shape``, C order (the last
    axis fastest). An empty block (``shape`` all 0) when nothing changed."""

    offset: tuple[int, ...]
    shape: tuple[int, ...]
    data: bytes


def label_dice(
    refined: np.ndarray, automatic: np.ndarray, names: list[str]
) -> tuple[LabelDice, ...]:
    """Each label's Dice (1 where neither map has the label)."""
    out = []
    for label, name in enumerate(names, start=1):
        a, b = refined == label, automatic == label
        denom = int(a.sum() + b.sum())
        dice = 1.0 if denom == 0 else 2.0 * int((a & b).sum()) / denom
        out.append(LabelDice(label, name, dice))
    return tuple(out)


def union(a: Region | None, b: Region | None) -> Region | None:
    """The smallest box holding both (``None`` is empty)."""
    if a is None or b is None:
        return a if b is None else b
    return tuple(
        slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b, strict=True)
    )


def _bbox(mask: np.ndarray, within: Region) -> Region | None:
    """The bounding box of ``mask`` (a block at ``within``) in the whole volume's indices."""
    if not mask.any():
        return None
    out = []
    for axis, w in enumerate(within):
        others = tuple(i for i in range(mask.ndim) if i != axis)
        hit = np.flatnonzero(mask.any(axis=others))
        out.append(slice(w.start + int(hit[0]), w.start + int(hit[-1]) + 1))
    return tuple(out)


def changed_block(labels: np.ndarray, region: Region | None) -> ChangedBlock:
    """``labels[region]`` as a :class:`ChangedBlock` (empty for ``None``)."""
    if region is None:
        return ChangedBlock((0,) * labels.ndim, (0,) * labels.ndim, gzip.compress(b"", mtime=0))
    block = np.ascontiguousarray(labels[region], dtype=np.uint8)
    return ChangedBlock(
        tuple(r.start for r in region),
        tuple(int(s) for s in block.shape),
        gzip.compress(block.tobytes(), compresslevel=1, mtime=0),
    )


class VolumeLabels:
    """The current label volume of an interaction and its running agreement with the
    automatic one (see the module doc). Not thread-safe: the interaction's lock guards it.

    Args:
        automatic: ``(X, Y, Z)`` uint8, the analysis's label volume (values ``0..K``).
        num_foreground: K.
    """

    def __init__(self, automatic: np.ndarray, num_foreground: int) -> None:
        self.automatic = automatic
        self.current = automatic.copy()
        self.k = num_foreground
        self._auto = self._count(automatic)
        self._current = self._auto.copy()
        self._overlap = self._auto.copy()  # voxels of each label in both
        self.changed = 0
        self._dirty: Region | None = None  # holds every voxel that differs from automatic

    def _count(self, labels: np.ndarray) -> np.ndarray:
        return np.bincount(labels.ravel(), minlength=self.k + 1)[: self.k + 1].astype(np.int64)

    def _account(self, region: Region, sign: int) -> None:
        cur, auto = self.current[region], self.automatic[region]
        same = cur == auto
        self._current += sign * self._count(cur)
        self._overlap += sign * self._count(cur[same])
        self.changed += sign * int(same.size - int(same.sum()))

    def paste(self, window: Region, labels: np.ndarray) -> Region | None:
        """Put ``labels`` (a block) at ``window``; the box of the voxels that changed."""
        moved = self.current[window] != labels
        self._account(window, -1)
        self.current[window] = labels
        self._account(window, +1)
        if (self.current[window] != self.automatic[window]).any():
            self._dirty = union(self._dirty, window)
        return _bbox(moved, window)

    def reset(self) -> Region | None:
        """Back to the automatic label volume; the box of the voxels that changed."""
        if self._dirty is None:
            return None
        region, self._dirty = self._dirty, None
        moved = _bbox(self.current[region] != self.automatic[region], region)
        self.current[region] = self.automatic[region]
        self._current, self._overlap, self.changed = self._auto.copy(), self._auto.copy(), 0
        return moved

    def dice(self, names: list[str]) -> tuple[LabelDice, ...]:
        """Each label's Dice against the automatic volume (1 where neither has the label)."""
        out = []
        for label, name in enumerate(names, start=1):
            denom = int(self._current[label] + self._auto[label])
            value = 1.0 if denom == 0 else 2.0 * int(self._overlap[label]) / denom
            out.append(LabelDice(label, name, value))
        return tuple(out)
