"""One training loop for both training from scratch and fine-tuning.

Configured by :class:`TrainSpec`; reports through :class:`TrainCallbacks`. Sampling
and augmentation come from :mod:`medloop.ml.data`, the loss from
:mod:`medloop.ml.loss`. Deterministic on CPU for a given seed; resumable from a
checkpoint in ``work_dir``; mixed precision (bf16) on CUDA.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medloop.domain.model import ModelManifest
from medloop.ml.data import PatchSampler, TrainItem
from medloop.ml.device import resolve_device
from medloop.ml.inference import Predictor
from medloop.ml.loss import WeightedDiceCELoss
from medloop.ml.metrics import score_label_maps
from medloop.ml.network import build_network

__all__ = ["TrainCallbacks", "TrainResult", "TrainSpec", "evaluate_items", "train"]


@dataclass(frozen=True)
class TrainSpec:
    """Hyper-parameters of one training run (recorded in the version's lineage).

    ``steps`` optimiser steps of ``batch_size`` patches; AdamW at ``lr`` with a
    linear warm-up over ``warmup_steps`` then cosine decay to ``lr * final_lr_ratio``.
    ``val_every`` steps the model is scored on the validation items (mean Dice) and
    the best is kept; 0 keeps the last weights.
    """

    steps: int = 2000
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    final_lr_ratio: float = 0.02
    val_every: int = 200
    fg_prob: float = 0.5
    augment: bool = True
    weighted_sampling: bool = True
    seed: int = 0
    amp: bool = True
    checkpoint_every: int = 200
    device: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainCallbacks:
    """Optional hooks; each receives plain numbers."""

    on_step: Callable[[int, int, float], None] | None = None  # (step, total, loss)
    on_validate: Callable[[int, float], None] | None = None  # (step, mean Dice)
    should_stop: Callable[[], bool] | None = None  # cancellation


@dataclass
class TrainResult:
    """The trained weights (on CPU) and what happened."""

    state_dict: dict[str, torch.Tensor]
    steps: int
    seconds: float
    best_val_dice: float | None
    best_step: int | None
    history: list[dict[str, float]] = field(default_factory=list)
    device: str = "cpu"


def _lr_lambda(spec: TrainSpec) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < spec.warmup_steps:
            return (step + 1) / max(1, spec.warmup_steps)
        t = (step - spec.warmup_steps) / max(1, spec.steps - spec.warmup_steps)
        cos = 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
        return spec.final_lr_ratio + (1 - spec.final_lr_ratio) * cos

    return f


def evaluate_items(
    model: torch.nn.Module,
    items: list[TrainItem],
    manifest: ModelManifest,
    device: torch.device,
) -> float:
    """Mean over items of the per-image mean foreground Dice (model put in eval mode)."""
    model.eval()
    scores = []
    with torch.inference_mode():
        for it in items:
            probs = Predictor.forward_prepared(model, it.image, manifest, device)
            pred = probs.argmax(0).numpy()
            scores.append(score_label_maps(pred, it.mask, manifest.labels.num_classes).mean_dice)
    return float(np.mean(scores)) if scores else float("nan")


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        torch.save(payload, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def train(
    manifest: ModelManifest,
    items: list[TrainItem],
    spec: TrainSpec,
    *,
    val_items: list[TrainItem] | None = None,
    init_state: dict[str, torch.Tensor] | None = None,
    work_dir: Path | None = None,
    callbacks: TrainCallbacks | None = None,
) -> TrainResult:
    """Train ``manifest.network`` on ``items`` and return the selected weights.

    Args:
        manifest: architecture, preprocessing and patch size (items are already preprocessed).
        items: training pairs with their weights.
        spec: hyper-parameters.
        val_items: scored every ``spec.val_every`` steps; the best weights win.
        init_state: start from these weights (fine-tuning) instead of random init.
        work_dir: if given, a checkpoint is kept there every ``spec.checkpoint_every``
            steps and an existing one is resumed.
        callbacks: progress, validation and cancellation hooks.
    """
    cb = callbacks or TrainCallbacks()
    device = resolve_device(spec.device)
    torch.manual_seed(spec.seed)
    rng = np.random.default_rng(spec.seed)
    model = build_network(manifest.network)
    if init_state is not None:
        model.load_state_dict(init_state)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(spec))
    loss_fn = WeightedDiceCELoss()
    sampler = PatchSampler(
        items,
        manifest.patch_size,
        spec.batch_size,
        rng,
        fg_prob=spec.fg_prob,
        weighted=spec.weighted_sampling,
        augment=spec.augment,
    )
    use_amp = spec.amp and device.type == "cuda"
    start_step, best_score, best_step = 0, -1.0, None
    best_state: dict[str, torch.Tensor] | None = None
    history: list[dict[str, float]] = []
    ckpt = work_dir / "checkpoint.pt" if work_dir is not None else None
    if ckpt is not None and ckpt.exists():
        saved = torch.load(ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        rng.bit_generator.state = saved["rng"]
        torch.set_rng_state(saved["torch_rng"])
        start_step, best_score, best_step = saved["step"], saved["best_score"], saved["best_step"]
        best_state, history = saved["best_state"], saved["history"]
    t0 = time.perf_counter()
    done = start_step
    for step in range(start_step, spec.steps):
        if cb.should_stop is not None and cb.should_stop():
            break
        model.train()
        batch = sampler.next_batch()
        x, y, w = batch.images.to(device), batch.masks.to(device), batch.weights.to(device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
            logits = model(x)
        loss = loss_fn(logits, y, w)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 12.0)
        opt.step()
        sched.step()
        if cb.on_step is not None:
            cb.on_step(step + 1, spec.steps, float(loss.detach()))
        done = step + 1
        if val_items and spec.val_every and (done % spec.val_every == 0 or done == spec.steps):
            score = evaluate_items(model, val_items, manifest, device)
            history.append({"step": float(done), "val_dice": score, "loss": float(loss.detach())})
            if cb.on_validate is not None:
                cb.on_validate(done, score)
            if score > best_score:
                best_score, best_step = score, done
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if ckpt is not None and spec.checkpoint_every and done % spec.checkpoint_every == 0:
            _save_checkpoint(
                ckpt,
                {
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(),
                    "step": done,
                    "best_score": best_score,
                    "best_step": best_step,
                    "best_state": best_state,
                    "history": history,
                },
            )
    final = (
        best_state
        if best_state is not None
        else copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
    )
    return TrainResult(
        state_dict=final,
        steps=done,
        seconds=time.perf_counter() - t0,
        best_val_dice=best_score if best_step is not None else None,
        best_step=best_step,
        history=history,
        device=str(device),
    )
