"""Plan a training run: fingerprint -> candidates -> timing probes -> the plan and its manifest.

The rules are in :mod:`medloop.domain.plan`; this module measures. Probing every
candidate would eat the budget, so the smallest is timed and the others are
extrapolated by their relative cost; the largest one that may fit is then timed, and
smaller ones after it until one does.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from medloop.domain.fingerprint import Fingerprint
from medloop.domain.flips import mirror_axes
from medloop.domain.labels import LabelSet
from medloop.domain.model import GuidanceSpec, ModelManifest, NetworkSpec, PreprocessSpec
from medloop.domain.plan import (
    Candidate,
    Plan,
    Resolution,
    candidates,
    choose,
    relative_cost,
    steps_needed,
)
from medloop.domain.ports import PairSample
from medloop.domain.settings import LearningPolicy, Strategy, TrainingOptions

if TYPE_CHECKING:
    from medloop.ml.trainer import TrainSpec

__all__ = [
    "build_manifest",
    "choose_color",
    "finetune_spec",
    "plan_training",
    "run_key_of",
    "train_spec",
]

DEFAULT_LR = {2: 2e-3, 3: 2e-3}
VALIDATIONS = 6
"""How many times the selection half of ``val`` is scored during a run."""
STEP_HEADROOM = 2.0
"""A budgeted run's step cap over the probe's estimate (time ends it first when the
probe was right). The probe times a few steps at the start and often catches the
machine slower than it then trains: on the 2-core AVX2 machine three 5-minute BUSI runs
hit a 1.25x cap with 6-28 s of their budget left (750 steps in 258 s of 285 where the
probe read 444 ms a step and the run made 344 ms)."""


def _preprocess(fp: Fingerprint, res: Resolution, color: str) -> PreprocessSpec:
    if fp.ct_like:
        lo, hi, _, _ = fp.foreground_intensity
        mean, std = fp.foreground_intensity[2], fp.foreground_intensity[3]
        return PreprocessSpec(
            color=color,
            normalization="clip_zscore",
            intensity=(lo, hi, mean, max(std, 1e-3)),
            scale=res.scale if any(s != 1 for s in res.scale) else None,
            target_spacing=res.target_spacing,
        )
    return PreprocessSpec(
        color=color,
        scale=res.scale if any(s != 1 for s in res.scale) else None,
        target_spacing=res.target_spacing if fp.spatial_dims == 3 else None,
    )


def build_manifest(
    plan: Plan, preprocess: PreprocessSpec, labels: LabelSet, keep_largest: tuple[int, ...] = ()
) -> ModelManifest:
    """The manifest of a version trained with ``plan``."""
    guidance = GuidanceSpec() if plan.interactive else None
    network = NetworkSpec(
        in_channels=preprocess.channels
        + (guidance.channels(labels.num_foreground) if guidance else 0),
        out_channels=labels.num_classes,
        channels=plan.channels,
        spatial_dims=plan.spatial_dims,
        strides=plan.strides,
    )
    return ModelManifest(
        network,
        preprocess,
        labels,
        plan.patch_size,
        keep_largest=keep_largest,
        guidance=guidance,
        plan=plan.to_dict(),
    )


def _probe(
    cand: Candidate,
    preprocess: PreprocessSpec,
    labels: LabelSet,
    dims: int,
    device: str | None,
    interactive: bool,
) -> float:
    from medloop.ml.probe import seconds_per_step

    draft = Plan(
        dims,
        (1.0,) * dims,
        None,
        cand.patch_size,
        cand.channels,
        cand.strides,
        cand.batch_size,
        1e-3,
        1,
        None,
        None,
        0,
        "zscore",
        None,
        preprocess.color,
        (),
        interactive=interactive,
    )
    return seconds_per_step(build_manifest(draft, preprocess, labels), cand.batch_size, device)


def _postprocessing_candidates(
    fp: Fingerprint, reasons: list[str]
) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    """Labels whose largest component alone may be kept, and ``(label, size)`` pairs whose
    smaller predicted components may be removed (sizes in pixels or voxels of the
    original grid); each with its reason appended to ``reasons``."""
    keep = tuple(c.value for c in fp.classes if c.image_share > 0 and c.single_share >= 0.7)
    if keep:
        reasons.append(
            f"labels {list(keep)} mostly one object per image: keeping only the largest "
            "component is tried on the selection set"
        )
    small = tuple(
        (c.value, int(c.largest_size))
        for c in fp.classes
        if 0 < c.image_share < 1 and c.largest_size >= 8
    )
    if small:
        reasons.append(
            f"some images have none of labels {[v for v, _ in small]}: removing predictions "
            "smaller than the smallest real object is tried on the selection set"
        )
    return keep, small


def plan_training(
    fp: Fingerprint,
    options: TrainingOptions,
    labels: LabelSet,
    color: str,
    seconds: float,
    device: str | None = None,
) -> tuple[Plan, PreprocessSpec]:
    """The plan for a run whose training loop may take ``seconds`` (after the probes).

    Returns:
        The plan and the preprocessing it implies.
    """
    dims = fp.spatial_dims
    pairs = candidates(fp, options)
    costs = [relative_cost(c) for _, c in pairs]
    specs = [_preprocess(fp, res, color) for res, _ in pairs]
    measured: dict[int, float] = {}

    def timed(i: int) -> float:
        if i not in measured:
            measured[i] = _probe(pairs[i][1], specs[i], labels, dims, device, options.interactive)
        return measured[i]

    smallest = len(pairs) - 1
    needs = steps_needed(
        [res.scale for res, _ in pairs], dims, options.steps, options.interactive, costs
    )
    base = timed(smallest)
    estimate = [base * c / costs[smallest] for c in costs]
    # The cost model overrates large patches (small ones pay more overhead per voxel):
    # time the largest candidate it puts within reach, then smaller ones until one fits.
    pick = next((i for i, e in enumerate(estimate) if seconds / e >= needs[i] * 0.6), smallest)
    while pick < smallest and seconds / timed(pick) < needs[pick]:
        pick += 1
    per_step = [measured.get(i, math.inf) if i >= pick else math.inf for i in range(len(pairs))]
    cand, steps, sps, why = choose(
        [c for _, c in pairs], per_step, seconds, dims, fixed_steps=options.steps, needs=needs
    )
    index = [c for _, c in pairs].index(cand)
    res = pairs[index][0]
    lr = options.lr or DEFAULT_LR[dims]
    val_every = options.val_every if options.val_every is not None else max(1, steps // VALIDATIONS)
    reasons = [
        *res.reasons,
        f"{len(pairs)} configurations considered; {len(measured)} timed on this machine",
        why,
    ]
    if options.steps is None:
        # The run ends on time and its schedule follows time: a cap above the probe's
        # estimate costs nothing when the probe was right and keeps training when the
        # machine turns out faster than the probe found it.
        steps = math.ceil(steps * STEP_HEADROOM)
        reasons.append(
            f"at most {steps} steps ({STEP_HEADROOM:g}x the estimate): the run ends on time"
        )
    if fp.ct_like:
        reasons.append("CT-like intensities: clip to the foreground's 0.5-99.5 % and z-score")
    else:
        reasons.append("intensities: z-score per image (0.5-99.5 % clipped)")
    keep, small = _postprocessing_candidates(fp, reasons)
    flips, why_not = mirror_axes(fp, options)
    if why_not:
        reasons.append(why_not)
    plan = Plan(
        spatial_dims=dims,
        scale=res.scale,
        target_spacing=res.target_spacing,
        patch_size=cand.patch_size,
        channels=cand.channels,
        strides=cand.strides,
        batch_size=cand.batch_size,
        lr=lr,
        steps=steps,
        budget_s=None if options.steps else seconds,
        seconds_per_step=sps if math.isfinite(sps) else None,
        val_every=val_every,
        normalization=specs[index].normalization,
        intensity=specs[index].intensity,
        color=color,
        keep_largest_candidates=keep,
        min_size_candidates=small,
        interactive=options.interactive,
        mirror_axes=flips,
        reasons=tuple(reasons),
    )
    return plan, replace(specs[index])


def train_spec(
    plan: Plan,
    options: TrainingOptions,
    seconds: float,
    device: str | None,
    validation_seconds: float | None = None,
) -> TrainSpec:
    """The trainer's spec for ``plan``; the loop may take ``seconds`` unless steps are fixed.

    ``validation_seconds``: the estimated cost of one validation (a plain pass over the
    selection set), by which a budgeted run spreads its validations.
    """
    from medloop.ml.trainer import TrainSpec

    return TrainSpec(
        steps=plan.steps,
        batch_size=plan.batch_size,
        lr=plan.lr,
        val_every=plan.val_every,
        seed=options.seed,
        device=device,
        warmup_steps=min(50, max(1, plan.steps // 10)),
        max_seconds=None if options.steps is not None else max(seconds, 1.0),
        val_seconds=validation_seconds or None,
        **_augmentation(plan.strides, plan.mirror_axes),
    )


def choose_color(requested: str, images: Sequence[np.ndarray]) -> str:
    """``gray`` or ``rgb``; ``auto`` is rgb when any image's channels differ."""
    if requested != "auto":
        return requested
    for px in images:
        if px.shape[2] == 3 and not (px[..., 0] == px[..., 1]).all():
            return "rgb"
    return "gray"


def run_key_of(options: TrainingOptions, train: Sequence[PairSample]) -> str:
    """The checkpoint key of a training run from ``options`` on ``train`` (same inputs, same key)."""
    blob = json.dumps(
        {"o": options.to_json(), "k": [(s.key, s.image_sha256, s.mask_sha256) for s in train]},
        sort_keys=True,
    )
    return "train-" + hashlib.sha256(blob.encode()).hexdigest()[:16]


def _augmentation(
    strides: Iterable[Sequence[int]], mirror_axes: Iterable[int] | None
) -> dict[str, Any]:
    """A plan's flips and rotations as :class:`TrainSpec` fields: flips along
    ``mirror_axes`` (``None``: all), rotations in-plane only where some level pools the
    axes unevenly (thick slices). A fine-tune passes its parent's plan, so it augments
    as its parent was trained."""
    return {
        "mirror_axes": None if mirror_axes is None else tuple(int(a) for a in mirror_axes),
        "in_plane_only": any(len(set(s)) > 1 for s in strides),
    }


def finetune_spec(
    policy: LearningPolicy, parent_plan: dict[str, Any], n_corrections: int, device: str | None
) -> TrainSpec:
    """A fine-tune's hyper-parameters: ``policy.steps`` (``retrain``: the parent's planned
    steps; format-1 manifests: the old default), ending earlier when ``policy.budget_s``
    is spent. Checkpoints every tenth of the run."""
    from medloop.ml.trainer import TrainSpec

    if policy.strategy == Strategy.RETRAIN:
        steps = int(parent_plan.get("steps", 2000))
        return TrainSpec(
            steps=steps,
            batch_size=int(parent_plan.get("batch_size", 8)),
            lr=float(parent_plan.get("lr", 1e-3)),
            warmup_steps=min(50, max(1, steps // 10)),
            val_every=0,
            seed=policy.seed,
            device=device,
            max_seconds=policy.budget_s,
            **_augmentation(parent_plan.get("strides", ()), parent_plan.get("mirror_axes")),
        )
    return TrainSpec(
        steps=policy.steps,
        batch_size=policy.batch_size,
        lr=policy.lr,
        warmup_steps=max(1, policy.steps // 10),
        val_every=0,
        seed=policy.seed + n_corrections,
        device=device,
        max_seconds=policy.budget_s,
        checkpoint_every=max(1, min(200, policy.steps // 10)),
        distill=policy.distillation,
        l2sp=policy.l2sp,
        ema=policy.ema,
        encoder_lr_scale=policy.encoder_lr_scale,
        **_augmentation(parent_plan.get("strides", ()), parent_plan.get("mirror_axes")),
    )
