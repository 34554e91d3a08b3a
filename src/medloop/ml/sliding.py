"""Sliding-window inference that streams finished slabs along the first spatial axis.

MONAI's ``sliding_window_inference`` keeps whole-grid accumulators (``K+1`` class maps
and a weight map) until the last window is done; on a CT-sized volume those are several
times the volume's size. :func:`stream_softmax` runs the same windows (MONAI's
``dense_patch_slices`` positions, the same Gaussian weights, the same ``sw_batch_size``
batches, in MONAI's order, which is by start along the first axis) but accumulates into
a ring buffer of planes, as deep as one batch of windows reaches. As soon as no
later window touches a plane, the plane is final: divided by its weight sum (added up
then for those planes only, in the windows' order), softmaxed and handed on. The blending is MONAI's, sum for sum, so the result equals
``softmax(sliding_window_inference(...))`` (bit for bit on the CPU).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from monai.data.utils import compute_importance_map, dense_patch_slices

__all__ = ["GridSlab", "scan_interval", "stream_softmax"]

_PLANE_VOXELS = 1 << 20
"""Voxels per class of the planes finished in one step (4 MiB of float32 a map)."""

Network = Callable[[torch.Tensor], torch.Tensor]
"""``(B, C, *patch)`` -> logits ``(B, K+1, *patch)``."""

GridSlab = tuple[int, torch.Tensor]
"""``(start, probs)``: softmax ``(K+1, n, *rest)`` of grid planes ``start .. start+n``."""


def scan_interval(size: Sequence[int], roi: Sequence[int], overlap: float) -> tuple[int, ...]:
    """MONAI's window step per axis: ``int(roi * (1 - overlap))``, at least 1, or ``roi``."""
    out = []
    for s, r in zip(size, roi, strict=True):
        out.append(r if r == s else max(1, int(r * (1 - overlap))))
    return tuple(out)


def _weight_sums(
    windows: Sequence[Sequence[slice]],
    w: torch.Tensor,
    start: int,
    stop: int,
    rest: tuple[int, ...],
) -> torch.Tensor:
    """The sum of the Gaussian weights ``w`` ``(1, 1, *roi)`` of every window over planes
    ``start .. stop`` of the padded grid, ``(1, stop - start, *rest)``.

    Each voxel's weights are added in the windows' order, as the blending adds them, so
    the sums are the ones a whole-grid weight map accumulates, bit for bit; made for the
    planes being finished only, no ring of weights is kept beside the class maps.
    ``windows``: every window, sorted by its start along the first axis.
    """
    out = torch.zeros((1, stop - start, *rest), dtype=w.dtype, device=w.device)
    first = windows[0][0].stop - windows[0][0].start  # every window is as deep
    starts = [win[0].start for win in windows]
    lo, hi = bisect.bisect_right(starts, start - first), bisect.bisect_left(starts, stop)
    for win in windows[lo:hi]:
        a, b = max(win[0].start, start), min(win[0].stop, stop)
        part = w[0][:, a - win[0].start : b - win[0].start]
        out[(slice(None), slice(a - start, b - start), *win[1:])] += part
    return out


def stream_softmax(
    model: Network,
    x: torch.Tensor,
    roi: tuple[int, ...],
    overlap: float,
    sw_batch_size: int,
    window_weights: torch.Tensor | None = None,
    extra_channels: int = 0,
) -> Iterator[GridSlab]:
    """Softmax of sliding-window logits of ``x``, yielded in slabs of the first axis.

    Args:
        model: the network (torch module or ONNX Runtime callable).
        x: ``(1, C, *grid)`` float32 image; a grid axis shorter than ``roi`` is padded
            with zeros on both sides (as MONAI does) and the padding cropped again.
        roi: the window (the manifest's patch size).
        overlap: the fraction of a window shared with its neighbour.
        sw_batch_size: windows per forward pass.
        window_weights: ``(1, 1, *roi)`` Gaussian weights; computed here if ``None``.
        extra_channels: zero channels appended to each window (an interactive model's
            guidance in its automatic mode), so ``x`` needs no copy with them.

    Yields:
        ``(start, probs)`` slabs in order, covering ``grid[0]`` once; ``probs`` is
        ``(K+1, n, *grid[1:])`` float32 on ``x``'s device.
    """
    size = tuple(x.shape[2:])
    pads: list[int] = []
    for s, r in zip(reversed(size), reversed(roi), strict=True):
        diff = max(r - s, 0)
        pads += [diff // 2, diff - diff // 2]
    if any(pads):
        x = F.pad(x, pads, mode="constant", value=0.0)
    padded = tuple(x.shape[2:])
    lo = [pads[2 * (len(size) - 1 - d)] for d in range(len(size))]
    crop = tuple(slice(lo[d], lo[d] + size[d]) for d in range(1, len(size)))
    if window_weights is None:
        window_weights = compute_importance_map(roi, mode="gaussian", device=x.device)[None, None]
    w = window_weights.to(device=x.device, dtype=x.dtype)
    windows = dense_patch_slices(padded, roi, scan_interval(padded, roi, overlap))
    windows = sorted(windows, key=lambda s: s[0].start)  # stable: MONAI's order already
    rest = padded[1:]
    batches = [windows[i : i + sw_batch_size] for i in range(0, len(windows), sw_batch_size)]
    # A ring of planes along the first axis, deep enough for every batch: planes before
    # a batch's first window are final by then, so it needs [first start, last stop).
    depth = max(max(s[0].stop for s in b) - b[0][0].start for b in batches)
    step = max(1, _PLANE_VOXELS // math.prod(rest))
    acc = None
    base = 0  # the first plane not yet handed on (padded indices)
    emitted = 0  # padded planes handed on (or cropped) so far
    for k, batch in enumerate(batches):
        data = torch.cat([x[(slice(None), slice(None), *s)] for s in batch])
        if extra_channels:
            zeros = data.new_zeros((data.shape[0], extra_channels, *data.shape[2:]))
            data = torch.cat([data, zeros], dim=1)
        out = model(data)
        out *= w  # in the network's dtype, as MONAI does
        if acc is None:
            acc = torch.zeros((out.shape[1], depth, *rest), dtype=x.dtype, device=x.device)
        for p, win in zip(out, batch, strict=True):
            ring = torch.arange(win[0].start, win[0].stop, device=x.device) % depth
            acc[(slice(None), slice(None), *win[1:])].index_add_(1, ring, p.to(x.dtype))
        done = batches[k + 1][0][0].start if k + 1 < len(batches) else padded[0]
        for start in range(base, done, step):  # a few planes at a time: small temporaries
            stop = min(start + step, done)
            ring = torch.arange(start, stop, device=x.device) % depth
            weight = _weight_sums(windows, w, start, stop, rest)
            probs = torch.softmax(acc.index_select(1, ring) / weight, 0)
            del weight
            acc.index_fill_(1, ring, 0.0)
            # Crop the padding of the first axis, and of the others.
            a, b = max(start, lo[0]), min(stop, lo[0] + size[0])
            if a < b:
                yield a - lo[0], probs[(slice(None), slice(a - start, b - start), *crop)]
                emitted = b
            del probs
        base = max(base, done)
    assert emitted == lo[0] + size[0], f"planes {emitted} of {size[0]} + {lo[0]} streamed"
