"""One clinician's interaction with an image: clicks accumulate, the model answers each time.

A :class:`RefineSession` prepares the image once (normalisation and resampling to the
plan's grid, the starting label map on that grid) and then, for every new set of
clicks, runs the interactive network only on a window of one patch around them (the
whole grid when it fits a patch) and pastes its answer, resampled to the input's grid,
into the label map: all of it but the window's outer :data:`CONTEXT` inside the grid. On a
volume whose patch is small (:data:`PAIR_MAX_VOXELS`) the network sees the window twice,
one voxel apart along each axis, and the two answers are averaged
(:func:`paired_window`).
As in training, the network's "previous mask" is the label map the interaction started
from, and every request carries all its clicks. A CT-sized volume then costs one patch
per click, not the whole volume. Every click holds in the answer
(:mod:`medloop.ml.click_hold`), and :meth:`RefineSession.refine` (the 2D route's) removes
whole the blobs that negative clicks reject (:mod:`medloop.ml.click_clear`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from medloop.domain.clicks import Box, Click, Guidance
from medloop.domain.image import Image
from medloop.errors import ConfigError
from medloop.ml.click_clear import clear_rejected
from medloop.ml.click_hold import hold_clicks
from medloop.ml.guidance import encode, to_grid
from medloop.ml.preprocess import prepare
from medloop.ml.reductions import class_argmax
from medloop.ml.resample import resample_labels, resample_probabilities

if TYPE_CHECKING:
    from medloop.ml.inference import Prediction, Predictor

__all__ = [
    "CONTEXT",
    "PAIR_MAX_VOXELS",
    "LabelBlock",
    "RefineResult",
    "RefineSession",
    "answered_window",
    "clip_box",
    "guidance_window",
    "pair_corners",
    "paired_window",
]

CONTEXT = 0.25
"""Of a patch, per side: the part of the window the network saw that is not pasted into
the answer, where the window's side lies inside the grid. There the network sees the
image only up to the window's edge (beyond is zero padding) and answers worse than the
automatic pass, which slid overlapping windows over it. Measured on the hippocampus's 52
`val` volumes (one click-guided model, 32³ patches, the window around each new click
pasted into the current labels, as the server's volume refine does): NoC@90 5.10 when
the whole window was pasted, 4.81 without its outer 4 voxels, 4.54 without its outer 8
(this rule), and 4.38 when every click recomputed the whole volume."""


PAIR_MAX_VOXELS = 2**17
"""The largest 3D patch (voxels) for which the refine sees its window twice, one voxel apart
along each axis, and averages the two answers (:func:`paired_window`): twice the cost of a
click. Measured on the hippocampus's 52 `val` volumes (32³ patches, the server's path,
three click-guided models trained 1000 steps each): Dice after 5 clicks +0.001 to +0.002
on every model, NoC@90 4.54 → 4.15, 4.50 → 4.13 and 4.37 → 4.33; 30 → 60 ms a click on
2 cores. Averaging the 8 windows one voxel apart measured the same at 4× the cost; two
windows 2 or 4 voxels apart did not lower NoC@90. A CT's 96 × 96 × 48 patch (442k voxels,
~400 ms a pass) keeps one pass; 2D refines were not measured and keep one pass."""


def guidance_window(
    guidance: Guidance, grid: tuple[int, ...], patch: tuple[int, ...]
) -> tuple[slice, ...]:
    """The window the network sees: the whole grid when it fits a patch, else at least a
    patch around the guidance (a quarter of a patch beyond its outermost points)."""
    if all(g <= p for g, p in zip(grid, patch, strict=True)):
        return tuple(slice(0, g) for g in grid)
    points = guidance.points
    if not points:
        return tuple(slice(0, g) for g in grid)
    out = []
    for axis, (g, p) in enumerate(zip(grid, patch, strict=True)):
        lo, hi = min(q[axis] for q in points), max(q[axis] for q in points)
        size = min(g, max(p, int(hi - lo) + 1 + p // 2))
        start = int(np.clip((lo + hi) / 2 - size / 2, 0, g - size))
        out.append(slice(start, start + size))
    return tuple(out)


def answered_window(
    window: tuple[slice, ...],
    grid: tuple[int, ...],
    patch: tuple[int, ...],
    guidance: Guidance | None = None,
) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """The part of the seen ``window`` that the answer covers: ``window`` without
    :data:`CONTEXT` of a patch on each side that lies inside ``grid`` (a side at the grid's
    edge is the image's own edge and is kept), but reaching half that beyond each of the
    ``guidance``'s points (grid indices) where the window holds it; and that part in
    ``window``'s indices."""
    points = [] if guidance is None else guidance.points
    out, inner = [], []
    for axis, (w, g, p) in enumerate(zip(window, grid, patch, strict=True)):
        margin = round(p * CONTEXT)
        lo = w.start + margin if w.start > 0 else w.start
        hi = w.stop - margin if w.stop < g else w.stop
        if points:
            reach = margin // 2
            lo = min(lo, max(w.start, int(np.floor(min(q[axis] for q in points))) - reach))
            hi = max(hi, min(w.stop, int(np.floor(max(q[axis] for q in points))) + 1 + reach))
        out.append(slice(lo, hi))
        inner.append(slice(lo - w.start, hi - w.start))
    return tuple(out), tuple(inner)


def paired_window(
    window: tuple[slice, ...], grid: tuple[int, ...], patch: tuple[int, ...]
) -> tuple[slice, ...]:
    """``window`` one voxel longer along each axis where it is exactly a patch and the grid
    is longer (toward the side with room), so that two passes of a patch, at its low and
    its high corner, see it one voxel apart (:func:`pair_corners`)."""
    out = []
    for w, g, p in zip(window, grid, patch, strict=True):
        if w.stop - w.start == p < g:
            out.append(slice(w.start, w.stop + 1) if w.stop < g else slice(w.start - 1, w.stop))
        else:
            out.append(w)
    return tuple(out)


def pair_corners(
    shape: tuple[int, ...], patch: tuple[int, ...]
) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
    """The two views of a window of ``shape`` (a :func:`paired_window`): its first and its
    last ``patch`` voxels along each axis one voxel longer than a patch, all of it along
    the others; ``None`` when no axis is."""
    longer = [s == p + 1 for s, p in zip(shape, patch, strict=True)]
    if not any(longer):
        return None
    low = tuple(slice(0, p) if m else slice(None) for p, m in zip(patch, longer, strict=True))
    high = tuple(slice(1, p + 1) if m else slice(None) for p, m in zip(patch, longer, strict=True))
    return low, high


def clip_box(box: Box, window: tuple[slice, ...]) -> Box | None:
    """``box`` (grid indices, corners in any order) cut to ``window``; ``None`` when they
    do not meet."""
    start, stop = [], []
    for a, b, w in zip(box.start, box.stop, window, strict=True):
        lo, hi = max(min(a, b), w.start), min(max(a, b), w.stop - 1)
        if lo > hi:
            return None
        start.append(lo)
        stop.append(hi)
    return Box(tuple(start), tuple(stop), box.label)


def _shift(guidance: Guidance, window: tuple[slice, ...]) -> Guidance:
    """Guidance in the window's own indices (a box cut to the window, or dropped)."""

    def move(index: tuple[float, ...]) -> tuple[float, ...]:
        return tuple(v - w.start for v, w in zip(index, window, strict=True))

    clicks = tuple(Click(move(c.index), c.label, c.positive) for c in guidance.clicks)
    box = None if guidance.box is None else clip_box(guidance.box, window)
    return Guidance(
        clicks, None if box is None else Box(move(box.start), move(box.stop), box.label)
    )


@dataclass(frozen=True)
class LabelBlock:
    """Labels ``(*block shape)`` uint8 for the input-grid ``window`` they were computed for."""

    window: tuple[slice, ...]
    labels: np.ndarray


@dataclass(frozen=True)
class RefineResult:
    """A refined label map on the input's grid and the input-grid window that was recomputed."""

    prediction: Prediction
    window: tuple[slice, ...]


class RefineSession:
    """The prepared image and starting labels of one interaction (see the module doc).

    Args:
        predictor: a version with an interactive model (``manifest.guidance``).
        image: the image or volume.
        previous: the label map the interaction starts from (the analysis) on the input's
            grid, or ``None`` to segment from the clicks alone.

    Raises:
        ConfigError: the version was not trained for clicks.
    """

    def __init__(self, predictor: Predictor, image: Image, previous: np.ndarray | None) -> None:
        manifest = predictor.manifest
        if manifest.guidance is None:
            raise ConfigError("this model version was not trained for clicks (no guidance input)")
        self.predictor, self.spec = predictor, manifest.guidance
        self.k = manifest.labels.num_foreground
        self.shape = image.shape
        self.x = prepare(image, manifest.preprocess)
        self.grid = tuple(int(s) for s in self.x.shape[1:])
        self.factors = tuple(g / s for g, s in zip(self.grid, self.shape, strict=True))
        self.start = (
            np.zeros(self.shape, np.uint8) if previous is None else np.ascontiguousarray(previous)
        )
        self.start_grid = (
            None if previous is None else resample_labels(previous, self.grid, self.k + 1)
        )
        patch = manifest.patch_size
        self.paired = len(patch) == 3 and int(np.prod(patch)) <= PAIR_MAX_VOXELS

    def _input_window(self, window: tuple[slice, ...]) -> tuple[slice, ...]:
        out = []
        for w, f, s in zip(window, self.factors, self.shape, strict=True):
            lo, hi = int(np.floor(w.start / f)), int(np.ceil(w.stop / f))
            out.append(slice(max(0, lo), min(s, hi)))
        return tuple(out)

    def _run(self, guidance: Guidance, around: Guidance) -> tuple[tuple[slice, ...], torch.Tensor]:
        """Run the network on the grid window around ``around`` with all of ``guidance``
        (both in the input's indices); the input-grid window and its probabilities
        ``(K + 1, *window shape)``."""
        p = self.predictor
        moved = to_grid(guidance, self.factors)
        near = to_grid(around, self.factors)
        window = guidance_window(near, self.grid, p.manifest.patch_size)
        if self.paired:
            window = paired_window(window, self.grid, p.manifest.patch_size)
        shape = tuple(w.stop - w.start for w in window)
        prev = None if self.start_grid is None else self.start_grid[window]
        channels = encode(_shift(moved, window), prev, shape, self.k, self.spec)
        probs = self._forward(np.concatenate([self.x[(slice(None), *window)], channels]))
        window, inner = answered_window(window, self.grid, p.manifest.patch_size, near)
        probs = probs[(slice(None), *inner)].contiguous()
        target = self._input_window(window)
        probs = resample_probabilities(probs, tuple(w.stop - w.start for w in target))
        # Each click holds at the input pixel it was given on; the bump is the guidance's
        # width, measured in the input's pixels.
        sigmas = tuple(self.spec.sigma / f for f in self.factors)
        return target, hold_clicks(probs, _shift(guidance, target).clicks, sigmas)

    def _forward(self, inputs: np.ndarray) -> torch.Tensor:
        """Probabilities ``(K + 1, *window)`` of the network's input ``(C, *window)``: the
        mean of the two views where the window is a :func:`paired_window`."""
        p = self.predictor
        shape = tuple(inputs.shape[1:])
        corners = pair_corners(shape, p.manifest.patch_size) if self.paired else None
        if corners is None:
            return p.forward_prepared(p.model, inputs, p.manifest, p.device, p.sw_batch_size)
        total, count = torch.zeros((self.k + 1, *shape)), torch.zeros((1, *shape))
        for view in corners:
            part = (slice(None), *view)
            total[part] += p.forward_prepared(
                p.model, inputs[part], p.manifest, p.device, p.sw_batch_size
            )
            count[part] += 1
        return total.div_(count)

    @torch.inference_mode()
    def refine_block(self, guidance: Guidance, new: Guidance) -> LabelBlock:
        """Labels for a window around ``new`` (the request's clicks and box) given all of
        ``guidance`` (the interaction's, ``new`` included), in the input's indices."""
        target, local = self._run(guidance, new)
        return LabelBlock(target, class_argmax(local).numpy())

    @torch.inference_mode()
    def refine(self, guidance: Guidance) -> RefineResult:
        """The label map for all clicks so far (in the input's array indices), with the blobs
        that negative clicks reject removed whole (:func:`clear_rejected`)."""
        from medloop.ml.inference import Prediction
        from medloop.ml.reductions import uncertainty

        target, local = self._run(guidance, guidance)
        labels = self.start.copy()
        labels[target] = class_argmax(local).numpy()
        clear_rejected(labels, self.start, local, target, guidance, self.k)
        prediction = Prediction(
            label_map=labels, probabilities=local.numpy(), uncertainty=uncertainty(local)
        )
        return RefineResult(prediction, target)
