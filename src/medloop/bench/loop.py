"""The simulated clinician: how fast does each strategy learn from corrections?

Train a base model on the source group; then, round after round, analyse K unseen
images of the target group's ``train`` split with production, submit their
ground-truth masks as corrections, fine-tune and gate. After each round, score
production on the target and source groups' ``test`` splits. Every strategy starts
from the same base model and gets the same fine-tune budget (steps).
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from medloop.bench.budgets import Budget, budget
from medloop.domain.learning import LearningPolicy, Strategy
from medloop.errors import ConfigError, DatasetError
from medloop.io import Sample, load_dataset
from medloop.registry import ModelRegistry
from medloop.services.evaluation import EvalCase, evaluate_cases
from medloop.services.items import PairLoader
from medloop.services.learning import Learner
from medloop.services.training import TrainOptions, train_base

__all__ = ["LoopConfig", "run_loop"]


@dataclass(frozen=True)
class LoopConfig:
    data: Path
    source_group: str
    target_group: str
    rounds: int = 2
    per_round: int = 5
    quick: bool = False
    strategies: tuple[str, ...] = ("weighted-replay", "corrections-only", "all-equal", "retrain")
    device: str | None = None
    seed: int = 0
    held_out_share: float = 0.2
    work_dir: Path | None = None
    correction_weight: float | None = None
    replay_size: int | None = None
    finetune_steps: int | None = None


def _subset(samples: list[Sample], limit: int | None) -> list[Sample]:
    if limit is None or len(samples) <= limit:
        return samples
    return sorted(samples, key=lambda s: hashlib.sha256(s.key.encode()).hexdigest())[:limit]


def _color_for(samples: list[Sample]) -> str:
    """``rgb`` when any of these images has real colour: the model will see both groups."""
    from medloop.io import read_image

    for s in samples:
        px = read_image(s.image).pixels
        if px.shape[2] == 3 and not (px[..., 0] == px[..., 1]).all():
            return "rgb"
    return "gray"


def machine_description(device: str | None) -> str:
    import torch

    if (device in (None, "auto") and torch.cuda.is_available()) or device == "cuda":
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    import os

    return f"{platform.processor() or platform.machine()} CPU x{os.cpu_count()}, torch {torch.__version__}"


class _Scorer:
    """Scores registry versions on fixed test sets, caching by version weights."""

    def __init__(
        self, loader: PairLoader, target: list[EvalCase], source: list[EvalCase], device: str | None
    ):
        self.loader, self.target, self.source, self.device = loader, target, source, device
        self._cache: dict[str, tuple[float, float, dict[str, Any]]] = {}

    def score(self, registry: ModelRegistry, name: str) -> tuple[float, float]:
        from medloop.ml.inference import Predictor

        rec = registry.get(name)
        key = hashlib.sha256(rec.weights_path.read_bytes()).hexdigest()
        if key not in self._cache:
            pred = Predictor.load(registry.manifest(name), rec.weights_path, self.device)
            t, _ = evaluate_cases(pred, self.target, self.loader)
            s, _ = evaluate_cases(pred, self.source, self.loader)
            self._cache[key] = (t.mean_dice, s.mean_dice, {})
        t_d, s_d, _ = self._cache[key]
        return t_d, s_d


def run_loop(cfg: LoopConfig, json_path: Path) -> dict[str, Any]:
    """Run every strategy and write the results to ``json_path``; returns them too."""
    bud: Budget = budget(cfg.quick)
    overrides: dict[str, Any] = {
        "correction_weight": cfg.correction_weight,
        "replay_size": cfg.replay_size,
        "finetune_steps": cfg.finetune_steps,
    }
    bud = replace(bud, **{k: v for k, v in overrides.items() if v is not None})
    for s in cfg.strategies:
        if s not in {x.value for x in Strategy}:
            raise ConfigError(
                f"unknown strategy {s!r}; choose from {', '.join(x.value for x in Strategy)}"
            )
    ds = load_dataset(cfg.data)
    for g in (cfg.source_group, cfg.target_group):
        if g not in ds.groups:
            raise DatasetError(
                f"{cfg.data}: no group {g!r} (groups: {', '.join(sorted(ds.groups))})"
            )
    pool = [s for s in ds.samples if s.group == cfg.target_group and s.split == "train"]
    pool = sorted(pool, key=lambda s: hashlib.sha256(f"{cfg.seed}:{s.key}".encode()).hexdigest())
    need = cfg.rounds * cfg.per_round
    if len(pool) < need:
        raise DatasetError(f"target group has {len(pool)} train images, {need} needed")
    target_test = [s for s in ds.samples if s.group == cfg.target_group and s.split == "test"]
    source_test = _subset(
        [s for s in ds.samples if s.group == cfg.source_group and s.split == "test"],
        bud.max_test_images,
    )
    console = Console(stderr=True)
    work = cfg.work_dir or Path(tempfile.mkdtemp(prefix="medloop-loop-"))
    work.mkdir(parents=True, exist_ok=True)
    loader = PairLoader(1)
    scorer = _Scorer(
        loader,
        [EvalCase(s.key, s.image, s.mask, s.group) for s in target_test],
        [EvalCase(s.key, s.image, s.mask, s.group) for s in source_test],
        cfg.device,
    )
    policy = LearningPolicy(
        correction_weight=bud.correction_weight,
        replay_size=bud.replay_size,
        steps=bud.finetune_steps,
        lr=bud.finetune_lr,
        batch_size=bud.batch_size,
        held_out_share=cfg.held_out_share,
        seed=cfg.seed,
    )
    opts = TrainOptions(
        labels=("nucleus",) if "nuclei" in str(cfg.data) else ("foreground",),
        channels=bud.channels,
        patch_size=bud.patch_size,
        steps=bud.base_steps,
        batch_size=bud.batch_size,
        lr=bud.lr,
        val_every=bud.val_every,
        max_val_images=bud.max_val_images,
        group=cfg.source_group,
        seed=cfg.seed,
        device=cfg.device,
        policy=policy,
        color=_color_for(pool[:4] + [s for s in ds.samples if s.group == cfg.source_group][:4]),
    )
    base_dir = work / "base"
    shutil.rmtree(base_dir, ignore_errors=True)
    console.print(f"training the base model on {cfg.source_group} ({bud.base_steps} steps)")
    t0 = time.perf_counter()
    base = train_base(cfg.data, base_dir, opts)
    base_seconds = time.perf_counter() - t0
    base_t, base_s = scorer.score(ModelRegistry(base_dir), base.version)
    console.print(
        f"base: target Dice {base_t:.4f}, source Dice {base_s:.4f} ({base_seconds:.0f} s)"
    )
    results: dict[str, Any] = {
        "machine": machine_description(cfg.device),
        "config": {
            "data": str(cfg.data),
            "source_group": cfg.source_group,
            "target_group": cfg.target_group,
            "rounds": cfg.rounds,
            "per_round": cfg.per_round,
            "quick": cfg.quick,
            "held_out_share": cfg.held_out_share,
            "budget": bud.__dict__,
            "n_target_test": len(target_test),
            "n_source_test": len(source_test),
        },
        "base": {"target_dice": base_t, "source_dice": base_s, "seconds": base_seconds},
        "strategies": {},
    }
    for strat in cfg.strategies:
        reg_dir = work / strat
        shutil.rmtree(reg_dir, ignore_errors=True)
        shutil.copytree(base_dir, reg_dir)
        learner = Learner(reg_dir, cfg.device, loader)
        strat_policy = replace(policy, strategy=Strategy(strat))
        rounds: list[dict[str, Any]] = []
        for r in range(cfg.rounds):
            for smp in pool[r * cfg.per_round : (r + 1) * cfg.per_round]:
                learner.store.add(
                    smp.image,
                    smp.mask,
                    key=smp.key,
                    held_out_share=cfg.held_out_share,
                    author="simulated-clinician",
                    corrects_version=learner.registry.production(),
                )
            out = learner.finetune(strat_policy)
            prod = learner.registry.production()
            t_d, s_d = scorer.score(learner.registry, prod)
            c_t, c_s = scorer.score(learner.registry, out.version)
            row = {
                "round": r + 1,
                "n_corrections": (r + 1) * cfg.per_round,
                "n_trained": out.n_trained_corrections,
                "n_held_out": out.n_heldout_corrections,
                "target_dice": t_d,
                "source_dice": s_d,
                "candidate_target_dice": c_t,
                "candidate_source_dice": c_s,
                "seconds": out.total_seconds,
                "train_seconds": out.seconds,
                "promoted": out.promoted,
                "version": out.version,
                "gate": list(out.decision.reasons),
            }
            rounds.append(row)
            console.print(
                f"{strat} round {r + 1}: target {t_d:.4f} source {s_d:.4f} "
                f"(candidate {c_t:.4f}/{c_s:.4f}, {'promoted' if out.promoted else 'rejected'}, "
                f"{out.total_seconds:.1f} s)"
            )
        results["strategies"][strat] = {"rounds": rounds}
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2))
    print_loop_table(results, Console())
    return results


def print_loop_table(results: dict[str, Any], console: Console) -> None:
    base = results["base"]
    table = Table(
        "strategy",
        "corrections",
        "target Dice",
        "source Dice",
        "cand. target",
        "cand. source",
        "promoted",
        "seconds",
        title=f"base: target {base['target_dice']:.3f}, source {base['source_dice']:.3f} — {results['machine']}",
    )
    for name, s in results["strategies"].items():
        for row in s["rounds"]:
            table.add_row(
                name,
                str(row["n_corrections"]),
                f"{row['target_dice']:.3f}",
                f"{row['source_dice']:.3f}",
                f"{row['candidate_target_dice']:.3f}",
                f"{row['candidate_source_dice']:.3f}",
                "yes" if row["promoted"] else "no",
                f"{row['seconds']:.1f}",
            )
    console.print(table)
