"""A rejected blob goes whole: negative clicks finish what the network started.

A clinician who clicks "not this" on a false blob wants it gone. The click-guided network
usually removes most of it but can leave a rim or a speck, and a label map that should be
empty scores Dice 0 until its last false pixel is gone (on BUSI's `normal` images the
false regions took 4-5 negative clicks to clear). So after the network's answer, for each
label the interaction has only negative clicks for (no positive click and no box of it),
each clicked blob of that label in the starting map — a connected component — whose
answer kept less than :data:`KEEP` of it is removed whole; its pixels take the answer's
most likely other label. A blob the network mostly kept (a clinician trimming a true
object's edge) is left as the network answered.

Measured on one BUSI click-guided model, the 73 `val` images (Dice after 1 / 3 / 5 clicks,
NoC@85, NoC@90): 0.712 / 0.799 / 0.885, 2.59, 4.06 without; 0.715 / 0.826 / 0.893, 2.45,
3.86 with this rule. Removing every clicked blob whatever the network kept gave 0.835
after 3 clicks but 0.452 after 1: a first click trimming an over-segmented lesion removed
the lesion.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from medloop.domain.clicks import Guidance

__all__ = ["KEEP", "clear_rejected"]

KEEP = 0.25
"""A clicked blob whose answer kept less than this share of it is removed whole."""


def clear_rejected(
    labels: np.ndarray,
    start: np.ndarray,
    probs: torch.Tensor,
    window: tuple[slice, ...],
    guidance: Guidance,
    k: int,
) -> None:
    """Remove, in place, the rest of each rejected blob inside ``window`` (see the module doc).

    Args:
        labels: the answer, uint8 ``(*shape)`` on the input's grid.
        start: the label map the interaction started from, same shape.
        probs: the answer's probabilities ``(K + 1, *window shape)``.
        window: where the answer was recomputed (input indices).
        guidance: all the interaction's clicks and box, in input indices.
        k: the number of foreground labels.
    """
    sub, first = labels[window], start[window]
    for label in range(1, k + 1):
        if guidance.box is not None and guidance.box.label == label:
            continue
        clicks = [c for c in guidance.clicks if c.label == label]
        if not clicks or any(c.positive for c in clicks):
            continue
        blobs, _ = ndimage.label(first == label)
        others: np.ndarray | None = None  # the answer's most likely label but this one
        for click in clicks:
            at = tuple(int(v) - w.start for v, w in zip(click.index, window, strict=True))
            if not all(0 <= i < s for i, s in zip(at, sub.shape, strict=True)) or not blobs[at]:
                continue
            blob = blobs == blobs[at]
            left = blob & (sub == label)
            if left.sum() >= KEEP * blob.sum():
                continue
            if others is None:
                rest = probs.clone()
                rest[label] = -1.0
                others = rest.argmax(0).numpy().astype(np.uint8)
            sub[left] = others[left]
