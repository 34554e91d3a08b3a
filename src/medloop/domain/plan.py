"""From a dataset's fingerprint and a time budget to a training configuration: the rules.

The planner decides in three steps, each a pure function tested on its own:

1. :func:`resolution` — the resampling: keep the thinnest structures at least a few
   pixels wide, and shrink large objects until a patch covers the typical one with
   context (a lesion of 400 px is shrunk, nuclei and membranes are not).
2. :func:`candidates` — network configurations that fit the resampled data, largest
   first: patch size, depth, per-axis strides (in-plane only where slices are thick),
   widths and batch size.
3. :func:`choose` — given each candidate's measured seconds per step on this machine
   (a short timing probe), the first one — finest resolution, then largest network — that
   still gets enough steps in the budget, and how many steps that is.

Every decision adds a line to ``Plan.reasons``; the plan is stored in the version's
manifest and shown by ``medloop train`` and ``medloop models show``. Any field can
be forced by the user (:class:`~medloop.domain.settings.TrainingOptions`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from medloop.domain.fingerprint import Fingerprint
from medloop.domain.settings import TrainingOptions
from medloop.errors import ConfigError

__all__ = [
    "MIN_STEPS",
    "Candidate",
    "Plan",
    "Resolution",
    "candidates",
    "choose",
    "relative_cost",
    "resolution",
    "steps_needed",
]

MIN_STEPS = {2: 1000, 3: 600}
"""A candidate is chosen only if the budget buys it at least this many steps."""
MIN_STEPS_FINER = {2: 600, 3: 400}
"""... or this many, when it resamples the data less than the coarsest candidate does.

Detail lost to shrinking is not brought back by more steps: on BUSI (lesions of ~400 px
shrunk to fit the patch) x0.47 in 256-px patches for 686 steps scored 0.706 test Dice,
x0.22 in 128-px patches for 1077 steps 0.657 (5-minute budgets, 2-core CPU)."""
MIN_STEPS_LEAST = {2: 400, 3: 400}
"""... or this many, for the cheapest network at such a resolution (in 2D a shallower
one, see :func:`candidates`): a slower machine keeps the resolution and trains a smaller
network rather than shrinking the data further. BUSI, 5 minutes on a 2-core CPU without
bfloat16: x0.47 in 256-px patches with a U-Net 16..256 (5 levels) for 469 steps scored
0.684 test Dice, 16..512 (6 levels) for 383 steps 0.631, and x0.22 in 128-px patches for
606 steps 0.619."""
FEWEST_STEPS = 20
"""A budget that buys fewer steps than this (of the smallest network) is refused."""
THIN_PX = 3.0
"""The thinnest foreground structure keeps at least this many pixels across."""
GAP_PX = 4.0
"""Thin background (membranes between cells) keeps at least this many pixels across."""
COVER = 0.75
"""After resampling, the typical large object (p90 extent) spans at most this share of a patch."""
PATCH_2D = (256, 192, 128, 96)
VOXELS_3D = (128**3, 96**3, 80 * 80 * 64, 64**3, 48 * 64 * 48, 40 * 56 * 40, 32**3)
FEATURE_MIN = 4
"""Down-sampling stops when an axis would fall below this many voxels."""
MAX_LEVELS = 6


@dataclass(frozen=True)
class Resolution:
    """The resampling: a factor for images without spacing, a target spacing for those with one."""

    scale: tuple[float, ...]
    target_spacing: tuple[float, ...] | None
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Candidate:
    """A network configuration on the resampled grid."""

    patch_size: tuple[int, ...]
    channels: tuple[int, ...]
    strides: tuple[tuple[int, ...], ...]
    batch_size: int

    @property
    def divisors(self) -> tuple[int, ...]:
        out = [1] * len(self.patch_size)
        for s in self.strides:
            out = [o * k for o, k in zip(out, s, strict=True)]
        return tuple(out)


@dataclass(frozen=True)
class Plan:
    """How a version is trained (stored in its manifest)."""

    spatial_dims: int
    scale: tuple[float, ...]
    target_spacing: tuple[float, ...] | None
    patch_size: tuple[int, ...]
    channels: tuple[int, ...]
    strides: tuple[tuple[int, ...], ...]
    batch_size: int
    lr: float
    steps: int
    budget_s: float | None
    seconds_per_step: float | None
    val_every: int
    normalization: str
    intensity: tuple[float, float, float, float] | None
    color: str
    keep_largest_candidates: tuple[int, ...]
    reasons: tuple[str, ...] = field(default=())
    min_size_candidates: tuple[tuple[int, int], ...] = ()
    """(label, smallest real object in pixels/voxels) to try removing smaller predictions."""
    interactive: bool = False
    """The network also takes click guidance (see ``GuidanceSpec``)."""
    mirror_axes: tuple[int, ...] | None = None
    """Spatial axes training flips along (:func:`medloop.domain.flips.mirror_axes`); ``None``: all (older plans)."""
    fingerprint: dict[str, Any] | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples as lists)."""
        out: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        def tup(v: Any) -> Any:
            return None if v is None else tuple(v)

        return cls(
            **{
                **d,
                "scale": tuple(d["scale"]),
                "target_spacing": tup(d["target_spacing"]),
                "patch_size": tuple(d["patch_size"]),
                "channels": tuple(d["channels"]),
                "strides": tuple(tuple(s) for s in d["strides"]),
                "intensity": tup(d["intensity"]),
                "keep_largest_candidates": tuple(d["keep_largest_candidates"]),
                "min_size_candidates": tuple(tuple(p) for p in d.get("min_size_candidates", ())),
                "reasons": tuple(d["reasons"]),
                "mirror_axes": tup(d.get("mirror_axes")),
            }
        )

    def summary(self) -> str:
        """One line: spacing or scale, patch, network, steps."""
        grid = (
            f"spacing {'x'.join(f'{s:g}' for s in self.target_spacing)} mm"
            if self.target_spacing is not None
            else f"scale {'x'.join(f'{s:.3g}' for s in self.scale)}"
        )
        return (
            f"{self.spatial_dims}D, {grid}, patch {'x'.join(map(str, self.patch_size))}, "
            f"U-Net {'-'.join(map(str, self.channels))}, batch {self.batch_size}, "
            f"{self.steps} steps"
        )


def _round_scale(s: float) -> float:
    """Scales snap to multiples of 1/32 below 1 (stable across similar datasets)."""
    return 1.0 if s >= 1.0 else max(1 / 32, math.floor(s * 32) / 32)


def resolution(fp: Fingerprint, patch_side: int, options: TrainingOptions) -> Resolution:
    """The resampling for patches of ``patch_side`` pixels/voxels (see the module doc)."""
    reasons: list[str] = []
    if options.scale is not None or options.spacing is not None:
        scale = (options.scale or 1.0,) * fp.spatial_dims
        spacing = options.spacing
        if spacing is not None and fp.spacing_median is not None:
            scale = tuple(m / t for m, t in zip(fp.spacing_median, spacing, strict=True))
        reasons.append("resolution set by the user")
        return Resolution(scale, spacing, tuple(reasons))
    extent = max((c.extent[2] for c in fp.classes if c.image_share > 0), default=0.0)
    thin = min((c.thickness for c in fp.classes if c.image_share > 0), default=math.inf)
    keep_detail = max(THIN_PX / thin if thin > 0 else 1.0, GAP_PX / fp.gap if fp.gap > 0 else 1.0)
    fits = max(fp.shape_median) <= patch_side
    cover = COVER * patch_side / extent if extent > 0 and not fits else 1.0
    s = _round_scale(min(1.0, max(cover, keep_detail)))
    if s < 1.0:
        reasons.append(
            f"objects reach {extent:.0f} px (p90): shrink x{s:g} so they fit a "
            f"{patch_side}-px patch; the thinnest structures ({thin:.0f} px, gaps "
            f"{fp.gap:.0f} px) stay >= {THIN_PX:g} px"
        )
    else:
        reasons.append(
            f"native resolution: objects ({extent:.0f} px p90) fit a {patch_side}-px patch "
            f"or structures are thin ({thin:.0f} px, gaps {fp.gap:.0f} px)"
        )
    target = None
    if fp.spacing_median is not None:
        target = tuple(m / s for m in fp.spacing_median)
        if fp.spatial_dims == 3 and fp.anisotropy > 3:
            reasons.append(
                f"anisotropic spacing {'x'.join(f'{v:g}' for v in fp.spacing_median)} mm: "
                "kept per axis (no resampling of the thick axis to the thin ones)"
            )
    return Resolution((s,) * fp.spatial_dims, target, tuple(reasons))


def _levels(shape: tuple[int, ...], spacing: tuple[float, ...]) -> tuple[tuple[int, ...], ...]:
    """Per-level strides: halve an axis while it stays >= FEATURE_MIN and is not much coarser
    than the finest axis (thick slices are pooled in-plane first, as nnU-Net does)."""
    size, sp = list(shape), list(spacing)
    strides: list[tuple[int, ...]] = []
    while len(strides) < MAX_LEVELS - 1:
        finest = min(sp)
        step = tuple(
            2 if size[a] // 2 >= FEATURE_MIN and sp[a] <= 2 * finest else 1
            for a in range(len(size))
        )
        if not any(s == 2 for s in step):
            break
        strides.append(step)
        size = [n // k for n, k in zip(size, step, strict=True)]
        sp = [v * k for v, k in zip(sp, step, strict=True)]
    return tuple(strides)


def _fit(side: float, divisor: int) -> int:
    return max(divisor, math.ceil(side / divisor) * divisor)


def candidates(fp: Fingerprint, options: TrainingOptions) -> list[tuple[Resolution, Candidate]]:
    """Resolutions and network configurations for the data: finest resolution first, at
    each the largest (slowest) network first.

    2D: square patches of :data:`PATCH_2D` sides, each with the resolution that fits it;
    3D: the resampled median volume, shrunk to each of :data:`VOXELS_3D`. Each patch
    comes with two widths (base 32 and 16) unless the user set the channels; in 2D, a
    patch at a finer resolution than the coarsest also with a network one level shallower
    (base 16), the cheapest there (see :data:`MIN_STEPS_LEAST`), except for a
    click-guided model.
    """
    dims = fp.spatial_dims
    if options.patch_size is not None:
        sides = [min(options.patch_size)]
    elif dims == 2:
        sides = list(PATCH_2D)
    else:
        sides = [round(v ** (1 / 3)) for v in VOXELS_3D]
    layouts: list[tuple[Resolution, tuple[int, ...], tuple[float, ...]]] = []
    for side, voxels in zip(sides, VOXELS_3D if dims == 3 else sides, strict=False):
        res = resolution(fp, side, options)
        grid = tuple(m * s for m, s in zip(fp.shape_median, res.scale, strict=True))
        spacing = res.target_spacing or (1.0,) * dims
        if options.patch_size is not None:
            patch = tuple(options.patch_size) * (dims if len(options.patch_size) == 1 else 1)
            if len(patch) != dims:
                raise ConfigError(f"patch size {list(options.patch_size)} for {dims}D images")
        elif dims == 2:
            patch = (side, side)
            if max(grid) * 1.25 < side and side != PATCH_2D[-1]:
                continue  # a smaller patch covers the image already
        else:
            patch = _patch_3d(grid, spacing, voxels)
        layouts.append((res, patch, spacing))
    coarsest = min((math.prod(res.scale) for res, _, _ in layouts), default=1.0)
    out: list[tuple[Resolution, Candidate]] = []
    seen: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()
    for res, patch, spacing in layouts:
        finer = math.prod(res.scale) > coarsest * 1.01
        # A click-guided model keeps the full step requirement everywhere (see
        # steps_needed): a cheaper network would only pull its choice finer.
        shallow = finer and dims == 2 and not options.interactive
        for cand in _networks(patch, spacing, dims, options, shallow=shallow):
            key = (cand.patch_size, cand.channels)
            if key not in seen:
                seen.add(key)
                out.append((res, cand))
    if not out:
        raise ConfigError("no network configuration fits these images")
    # Finest resolution first (detail lost to shrinking is not brought back by more steps),
    # then the most expensive network at it.
    return sorted(out, key=lambda rc: (-math.prod(rc[0].scale), -relative_cost(rc[1])))


def _networks(
    patch: tuple[int, ...],
    spacing: tuple[float, ...],
    dims: int,
    options: TrainingOptions,
    shallow: bool = False,
) -> list[Candidate]:
    """The networks for one patch: widths from 32 and from 16 at the full depth and, with
    ``shallow`` (and at least 4 levels left), one level less from 16 (unless the user set
    the channels)."""
    strides = _levels(patch, spacing)
    if options.channels is not None:
        strides = strides[: len(options.channels) - 1]
    depth = len(strides) + 1
    cap = 320 if dims == 3 else 512
    layouts: list[tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]] = (
        [(tuple(options.channels), strides)]
        if options.channels is not None
        else [(tuple(min(w0 * 2**i, cap) for i in range(depth)), strides) for w0 in (32, 16)]
    )
    if shallow and options.channels is None and depth > 4:
        layouts.append((tuple(min(16 * 2**i, cap) for i in range(depth - 1)), strides[:-1]))
    out = []
    for chans, levels in layouts:
        cand = Candidate(patch, chans, levels, 2)
        fitted = tuple(_fit(p, d) for p, d in zip(patch, cand.divisors, strict=True))
        out.append(
            replace(cand, patch_size=fitted, batch_size=options.batch_size or _batch(dims, fitted))
        )
    return out


def _patch_3d(grid: tuple[float, ...], spacing: tuple[float, ...], voxels: int) -> tuple[int, ...]:
    """The resampled median shape, shrunk (largest physical side first) to ``voxels``."""
    patch = [max(8.0, g) for g in grid]
    while math.prod(patch) > voxels:
        a = max(range(3), key=lambda i: patch[i] * spacing[i])
        patch[a] *= 0.9
    return tuple(int(math.ceil(p / 8) * 8) for p in patch)


def _batch(dims: int, patch: tuple[int, ...]) -> int:
    if dims == 2:
        return 16 if math.prod(patch) <= 192 * 192 else 8
    return 4 if math.prod(patch) <= 48 * 64 * 48 else 2


def steps_needed(
    scales: list[tuple[float, ...]],
    dims: int,
    fixed_steps: int | None = None,
    interactive: bool = False,
    costs: list[float] | None = None,
) -> list[int]:
    """Steps each candidate must get to be chosen, for candidates resampled by ``scales``.

    The user's ``fixed_steps`` for all; otherwise :data:`MIN_STEPS`, and
    :data:`MIN_STEPS_FINER` for a candidate at a finer scale than the coarsest one
    (:data:`MIN_STEPS_LEAST` for the cheapest of ``costs`` at that scale) — except for a
    click-guided model, which needs its steps to learn the clicks (BUSI, 5 minutes: Dice
    after 3 clicks 0.834 at x0.47 in 256-px patches, 0.861 at x0.22 in 128-px ones).
    """
    if fixed_steps is not None:
        return [fixed_steps] * len(scales)
    if interactive:
        return [MIN_STEPS[dims]] * len(scales)
    areas = [math.prod(s) for s in scales]
    coarsest = min(areas, default=1.0)
    cheapest: dict[float, float] = {}
    for a, c in zip(areas, costs or [], strict=False):
        cheapest[a] = min(c, cheapest.get(a, math.inf))
    needs = []
    for i, a in enumerate(areas):
        if a <= coarsest * 1.01:
            needs.append(MIN_STEPS[dims])
        elif costs is not None and costs[i] <= cheapest[a]:
            needs.append(MIN_STEPS_LEAST[dims])
        else:
            needs.append(MIN_STEPS_FINER[dims])
    return needs


def choose(
    options: list[Candidate],
    seconds_per_step: list[float],
    budget_s: float,
    dims: int,
    fixed_steps: int | None = None,
    needs: list[int] | None = None,
) -> tuple[Candidate, int, float, str]:
    """The first candidate (finest, then largest) that gets enough steps in ``budget_s``.

    Enough is ``needs[i]`` (from :func:`steps_needed`; default ``MIN_STEPS[dims]``), or
    all of the user's ``fixed_steps`` when given (the budget then picks the network, and
    the run takes exactly those steps).

    Args:
        options: from :func:`candidates`, in its order.
        seconds_per_step: measured for each (same order); ``inf`` where not probed.
        budget_s: seconds left for the training loop.
        fixed_steps: the user's step count.
        needs: steps each candidate must get (same order).

    Returns:
        ``(candidate, steps, seconds_per_step, reason)``.

    Raises:
        ConfigError: the budget buys fewer than :data:`FEWEST_STEPS` steps of the smallest
            candidate.
    """
    if needs is None:
        needs = steps_needed([(1.0,)] * len(options), dims, fixed_steps)
    best = len(options) - 1
    for i, sps in enumerate(seconds_per_step):
        if math.isfinite(sps) and budget_s / sps >= needs[i]:
            best = i
            break
    need = needs[best]
    sps = seconds_per_step[best]
    if fixed_steps is not None:
        return options[best], fixed_steps, sps, f"{fixed_steps} steps set by the user"
    steps = int(budget_s / sps) if math.isfinite(sps) else 0
    if steps < FEWEST_STEPS:
        raise ConfigError(
            f"a training budget of {budget_s:.0f} s fits {steps} steps of the smallest "
            f"network ({sps:.2f} s per step), fewer than {FEWEST_STEPS}: raise the budget"
        )
    why = (
        f"{sps * 1000:.0f} ms per step measured here: {steps} steps in {budget_s:.0f} s "
        f"(the largest network that gets >= {need} steps)"
    )
    if steps < need:
        why = f"{sps * 1000:.0f} ms per step: only {steps} steps fit in {budget_s:.0f} s"
    return options[best], steps, sps, why


def relative_cost(cand: Candidate) -> float:
    """A step's work, up to a constant: voxels x squared width summed over levels, x batch."""
    voxels = float(math.prod(cand.patch_size))
    total = voxels * cand.channels[0] ** 2
    for width, stride in zip(cand.channels[1:], cand.strides, strict=True):
        voxels /= math.prod(stride)
        total += voxels * width**2
    return total * cand.batch_size
