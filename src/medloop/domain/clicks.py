"""A clinician's guidance for one interaction: clicks and an optional box, as plain data.

Coordinates are array indices of the input image on its own grid: ``(row, col)`` for a 2D
image, ``(i, j, k)`` along a volume's (canonical) axes. A positive click says "this is
label L", a negative one "this is not label L".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from medloop.errors import GuidanceError

__all__ = ["MAX_CLICKS", "Box", "Click", "Guidance", "check_guidance"]

MAX_CLICKS = 64
"""Clicks accepted in one interaction."""


@dataclass(frozen=True)
class Click:
    """One click: where (array index), which label, positive or negative."""

    index: tuple[float, ...]
    label: int
    positive: bool = True


@dataclass(frozen=True)
class Box:
    """A box around an object of ``label``: two opposite corners (array indices)."""

    start: tuple[float, ...]
    stop: tuple[float, ...]
    label: int = 1


@dataclass(frozen=True)
class Guidance:
    """Everything the clinician said in one interaction."""

    clicks: tuple[Click, ...] = ()
    box: Box | None = None

    @property
    def empty(self) -> bool:
        return not self.clicks and self.box is None

    @property
    def points(self) -> list[tuple[float, ...]]:
        """Every point it names, in array indices: the clicks, then the box's corners."""
        box = [] if self.box is None else [self.box.start, self.box.stop]
        return [c.index for c in self.clicks] + box


def check_guidance(guidance: Guidance, shape: tuple[int, ...], num_foreground: int) -> None:
    """Refuse guidance that does not fit the image and the labels.

    Raises:
        GuidanceError: too many clicks, a point outside the image or not finite, a label
            outside ``1..K``, a box of the wrong dimension.
    """
    if len(guidance.clicks) > MAX_CLICKS:
        raise GuidanceError(f"{len(guidance.clicks)} clicks; at most {MAX_CLICKS} per interaction")
    points = [("click", c.index, c.label) for c in guidance.clicks]
    if guidance.box is not None:
        points += [("box corner", guidance.box.start, guidance.box.label)]
        points += [("box corner", guidance.box.stop, guidance.box.label)]
    for what, index, label in points:
        if len(index) != len(shape):
            raise GuidanceError(
                f"a {what} needs {len(shape)} coordinates for this image, got {len(index)}"
            )
        if not all(math.isfinite(v) for v in index):
            raise GuidanceError(f"a {what} has a coordinate that is not a number: {index}")
        if not all(0 <= v < s for v, s in zip(index, shape, strict=True)):
            raise GuidanceError(f"a {what} at {index} lies outside the image {shape}")
        if not 1 <= label <= num_foreground:
            raise GuidanceError(f"label {label} is not one of the project's 1..{num_foreground}")
