"""Every click holds: the refined answer agrees with each click, changed only where the
network was unsure.

A click-guided network follows most clicks, but not all: near a boundary it may answer a
positive click with the same label map as before. A clinician who clicks and sees nothing
change clicks again, and the simulated clinician of ``bench interactive`` clicks the same
voxel over and over (measured on the hippocampus: up to ten clicks on one voxel).

After the network's pass, each click its answer contradicts gets the smallest correction
that makes it hold: a Gaussian bump (the guidance's ``sigma``) added to the log-probability
of the click's label — raised for a positive click, lowered for a negative one — just high
enough that the clicked voxel takes the clicked side by :data:`MARGIN`. The bump fades
away from the click, so it flips only the voxels whose own margin was smaller than the bump
there (where the network was unsure) and leaves confident voxels alone. Clicks are applied
in the order they were given, twice, so that a later click wins where two disagree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from medloop.domain.clicks import Click
from medloop.ml.guidance import blob, per_axis

__all__ = ["MARGIN", "hold_clicks"]

MARGIN = 0.5
"""Log-probability by which a corrected click's voxel takes the clicked side."""

_REACH = 4.0
"""The bump is computed within this many ``sigma`` of the click (beyond, it is < 4e-4)."""


def _near(
    index: tuple[int, ...], shape: tuple[int, ...], sigmas: Sequence[float]
) -> tuple[tuple[slice, ...], tuple[float, ...]]:
    """The box of ``_REACH * sigma`` around ``index`` within ``shape``, and the click's
    position inside that box."""
    reach = [int(np.ceil(_REACH * sd)) for sd in sigmas]
    box = tuple(
        slice(max(0, i - r), min(s, i + r + 1)) for i, s, r in zip(index, shape, reach, strict=True)
    )
    return box, tuple(float(i - b.start) for i, b in zip(index, box, strict=True))


def hold_clicks(
    probs: torch.Tensor,
    clicks: Sequence[Click],
    sigma: float | Sequence[float],
    margin: float = MARGIN,
) -> torch.Tensor:
    """Probabilities that agree with every click (see the module doc).

    Args:
        probs: class probabilities ``(K + 1, *shape)`` over a window of the image.
        clicks: the interaction's clicks in that window's indices (each holds at the
            pixel nearest to it); clicks outside it are left out.
        sigma: the bump's width in the window's pixels, one value or one per axis.
        margin: log-probability by which a corrected voxel takes the clicked side.

    Returns:
        ``probs`` itself when every click already holds, else corrected probabilities of
        the same shape.
    """
    shape = tuple(int(s) for s in probs.shape[1:])
    sigmas = per_axis(sigma, len(shape))
    inside: list[tuple[Click, tuple[int, ...]]] = []
    for click in clicks:
        index = tuple(round(v) for v in click.index)
        if all(0 <= i < s for i, s in zip(index, shape, strict=True)):
            inside.append((click, index))
    logp: torch.Tensor | None = None
    for click, index in inside * 2:
        voxel: tuple[slice | int, ...] = (slice(None), *index)
        at = logp[voxel] if logp is not None else probs[voxel].float().clamp_min(1e-6).log()
        others = torch.cat([at[: click.label], at[click.label + 1 :]]).max()
        short = (
            float(others - at[click.label] if click.positive else at[click.label] - others) + margin
        )
        if short <= 0:
            continue
        if logp is None:
            logp = probs.float().clamp_min(1e-6).log()
        box, centre = _near(index, shape, sigmas)
        bump = torch.from_numpy(blob(tuple(b.stop - b.start for b in box), centre, sigmas))
        near: tuple[slice | int, ...] = (click.label, *box)
        logp[near] += (short if click.positive else -short) * bump.to(logp.device)
    return probs if logp is None else torch.softmax(logp, 0).to(probs.dtype)
