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
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

from medloop.bench.budgets import Budget, budget
from medloop.domain.labels import LabelSet
from medloop.domain.ports import PairSample
from medloop.domain.settings import LearningPolicy, ProjectSettings, Strategy, TrainingOptions
from medloop.errors import ConfigError, DatasetError
from medloop.io import Sample, load_dataset
from medloop.services.evaluation import evaluate_samples
from medloop.services.folder_data import FolderTrainingData
from medloop.services.pairs import PairCache
from medloop.services.workspace import Workspace, train_workspace
from medloop.storage.folder_registry import FolderArtifactStore

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
    base_budget_s: float | None = None


def _subset(samples: list[Sample], limit: int | None) -> list[Sample]:
    if limit is None or len(samples) <= limit:
        return samples
    return sorted(samples, key=lambda s: hashlib.sha256(s.key.encode()).hexdigest())[:limit]


def _color_for(samples: list[Sample]) -> Literal["gray", "rgb"]:
    """``rgb`` when any of these images has real colour: the model will see both groups."""
    from medloop.io import read_image

    for s in samples:
        px = read_image(s.image).pixels
        if px.shape[2] == 3 and not (px[..., 0] == px[..., 1]).all():
            return "rgb"
    return "gray"


def dataset_labels(data: Path) -> LabelSet:
    """The labels of a dataset: an MSD ``dataset.json``'s names, else one ``foreground``."""
    meta = data / "dataset.json"
    if meta.is_file():
        names = json.loads(meta.read_text()).get("labels", {})
        ordered = [names[k] for k in sorted(names, key=int) if int(k) > 0]
        if ordered:
            return LabelSet.from_names(ordered)
    return LabelSet.from_names(["nucleus" if "nuclei" in str(data) else "foreground"])


def machine_description(device: str | None) -> str:
    import torch

    if (device in (None, "auto") and torch.cuda.is_available()) or device == "cuda":
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    import os

    return f"{platform.processor() or platform.machine()} CPU x{os.cpu_count()}, torch {torch.__version__}"


class _Scorer:
    """Scores versions on fixed test sets, caching by the weights' sha256."""

    def __init__(
        self,
        cache: PairCache,
        target: list[PairSample],
        source: list[PairSample],
        device: str | None,
    ) -> None:
        self.cache, self.target, self.source, self.device = cache, target, source, device
        self._scores: dict[str, tuple[float, float]] = {}

    def score(self, store: FolderArtifactStore, name: str) -> tuple[float, float]:
        from medloop.ml.inference import Predictor

        rec = store.get(name)
        key = rec.files["weights.pt"]
        if key not in self._scores:
            pred = Predictor.from_bytes(rec.manifest, store.read_file(name), self.device)
            t, _ = evaluate_samples(pred, self.target, self.cache)
            s, _ = evaluate_samples(pred, self.source, self.cache)
            self._scores[key] = (t.mean_dice, s.mean_dice)
        return self._scores[key]


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
    everything = FolderTrainingData(cfg.data, 1)
    by_key = {s.key: s for s in everything.reference()}
    cache = PairCache(everything)
    scorer = _Scorer(
        cache,
        [by_key[s.key] for s in target_test],
        [by_key[s.key] for s in source_test],
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
    settings = ProjectSettings(
        labels=LabelSet.from_names(
            ["nucleus" if "nuclei" in str(cfg.data) else "foreground"]
        ).labels,
        learning=policy,
        training=TrainingOptions(
            budget_s=cfg.base_budget_s or bud.base_budget_s,
            seed=cfg.seed,
            color=_color_for(pool[:4] + [s for s in ds.samples if s.group == cfg.source_group][:4]),
        ),
    )
    base_dir = work / "base"
    shutil.rmtree(base_dir, ignore_errors=True)
    console.print(
        f"training the base model on {cfg.source_group} ({settings.training.budget_s:.0f} s)"
    )
    t0 = time.perf_counter()
    base = train_workspace(
        cfg.data,
        base_dir,
        settings,
        group=cfg.source_group,
        device=cfg.device,
        max_val=bud.max_val_images,
        cache=cache,
    )
    base_seconds = time.perf_counter() - t0
    base_t, base_s = scorer.score(FolderArtifactStore(base_dir), base.version)
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
        workspace = Workspace.open(reg_dir)
        learner = workspace.learner(device=cfg.device, cache=cache)
        strat_policy = policy.model_copy(update={"strategy": Strategy(strat)})
        rounds: list[dict[str, Any]] = []
        for r in range(cfg.rounds):
            for smp in pool[r * cfg.per_round : (r + 1) * cfg.per_round]:
                workspace.corrections.add(
                    smp.image.read_bytes(),
                    smp.mask.read_bytes(),
                    key=smp.key,
                    held_out_share=cfg.held_out_share,
                    author="simulated-clinician",
                    corrects_version=workspace.store.production(),
                )
            out = learner.finetune(strat_policy)
            prod = workspace.store.require_production()
            t_d, s_d = scorer.score(workspace.store, prod)
            c_t, c_s = scorer.score(workspace.store, out.version)
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
