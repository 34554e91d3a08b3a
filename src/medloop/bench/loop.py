"""The simulated clinician: how fast does each strategy learn from corrections?

Train a base model on the source group; then, round after round, analyse K unseen
images of the target group's ``train`` split with production, submit their
ground-truth masks as corrections, fine-tune and gate. After each round, score
production on the target and source groups' ``test`` splits. Every strategy starts
from the same base model and gets the same fine-tune budget (steps).

With ``base_size`` (one-group datasets such as the hippocampus volumes) the base model
sees only that many ``train`` pairs and the corrections come from the others.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from medloop.bench.budgets import Budget, budget
from medloop.bench.machine import dataset_labels, machine_description
from medloop.domain.ports import PairSample
from medloop.domain.settings import LearningPolicy, ProjectSettings, Strategy, TrainingOptions
from medloop.errors import ConfigError, DatasetError
from medloop.io import Sample, load_dataset, read_image
from medloop.services.evaluation import evaluate_samples
from medloop.services.folder_data import FolderTrainingData
from medloop.services.pairs import PairCache
from medloop.services.workspace import Workspace, train_workspace
from medloop.storage.folder_registry import FolderArtifactStore

__all__ = ["LoopConfig", "LoopSetup", "correct_and_finetune", "prepare_loop", "run_loop"]


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
    base_size: int | None = None
    interactive: bool = False
    """Train a click-guided model and, after each round, click through the target's test
    images (NoC@85/90, Dice after 3 clicks; at most ``CLICK_IMAGES`` of them)."""


def _ranked(samples: list[Sample], seed: int) -> list[Sample]:
    return sorted(samples, key=lambda s: hashlib.sha256(f"{seed}:{s.key}".encode()).hexdigest())


def _color_for(samples: list[Sample]) -> str:
    """``rgb`` when any of these images has real colour: the model will see both groups."""
    for s in samples:
        px = read_image(s.image).pixels
        if px.shape[-1] == 3 and not (px[..., 0] == px[..., 1]).all():
            return "rgb"
    return "gray"


CLICK_IMAGES = 12
"""Target test images the simulated clinician clicks through after each round."""


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

    def clicks(self, store: FolderArtifactStore, name: str) -> dict[str, float]:
        """The clicks-to-Dice figures of version ``name`` on the target's test images."""
        from medloop.bench.interactive import click_curve
        from medloop.ml.inference import Predictor

        rec = store.get(name)
        pred = Predictor.from_bytes(rec.manifest, store.read_file(name), self.device)
        summary = click_curve(pred, self.target[:CLICK_IMAGES], self.cache).summary()
        return {k: summary[k] for k in ("noc85", "noc90", "dice_0", "dice_3")}


@dataclass
class LoopSetup:
    """A trained base model and everything the rounds need."""

    cfg: LoopConfig
    bud: Budget
    pool: list[Sample]
    scorer: _Scorer
    cache: PairCache
    policy: LearningPolicy
    work: Path
    base_dir: Path
    header: dict[str, Any]
    console: Console

    def workspace(self, name: str) -> Workspace:
        """A fresh copy of the base registry named ``name``."""
        reg_dir = self.work / f"run-{name}"
        shutil.rmtree(reg_dir, ignore_errors=True)
        shutil.copytree(self.base_dir, reg_dir)
        return Workspace.open(reg_dir)


def _budget(cfg: LoopConfig) -> Budget:
    return budget(cfg.quick)


@dataclass(frozen=True)
class _Split:
    pool: list[Sample]
    target_test: list[Sample]
    source_test: list[Sample]
    base_keys: set[str] | None


def _split(cfg: LoopConfig, bud: Budget, samples: tuple[Sample, ...]) -> _Split:
    """The corrections' pool (target ``train``, in a seeded order) and both test sets."""
    target_train = [s for s in samples if s.group == cfg.target_group and s.split == "train"]
    base_keys = None
    if cfg.base_size is not None:
        source_train = [s for s in samples if s.group == cfg.source_group and s.split == "train"]
        base_keys = {s.key for s in _ranked(source_train, cfg.seed)[: cfg.base_size]}
        target_train = [s for s in target_train if s.key not in base_keys]
    pool = _ranked(target_train, cfg.seed)
    need = cfg.rounds * cfg.per_round
    if len(pool) < need:
        raise DatasetError(f"target group has {len(pool)} train images, {need} needed")
    target_test = [s for s in samples if s.group == cfg.target_group and s.split == "test"]
    source_test = [s for s in samples if s.group == cfg.source_group and s.split == "test"]
    if bud.max_test_images is not None and cfg.source_group != cfg.target_group:
        source_test = _ranked(source_test, 0)[: bud.max_test_images]
    return _Split(pool, target_test, source_test, base_keys)


def _settings(
    cfg: LoopConfig, bud: Budget, split: _Split, samples: tuple[Sample, ...]
) -> ProjectSettings:
    overrides = {
        "correction_weight": cfg.correction_weight,
        "replay_size": cfg.replay_size,
        "steps": cfg.finetune_steps,
    }
    policy = LearningPolicy.parse(
        {
            "held_out_share": cfg.held_out_share,
            "seed": cfg.seed,
            **{k: v for k, v in overrides.items() if v is not None},
        }
    )
    source = [s for s in samples if s.group == cfg.source_group][:4]
    return ProjectSettings(
        labels=dataset_labels(cfg.data).labels,
        learning=policy,
        training=TrainingOptions(
            budget_s=cfg.base_budget_s or bud.base_budget_s,
            seed=cfg.seed,
            color=_color_for(split.pool[:4] + source),  # type: ignore[arg-type]
            interactive=cfg.interactive,
        ),
    )


def prepare_loop(cfg: LoopConfig) -> LoopSetup:
    """Check the data, split it, train the base model and score it."""
    bud = _budget(cfg)
    ds = load_dataset(cfg.data)
    for g in (cfg.source_group, cfg.target_group):
        if g not in ds.groups:
            raise DatasetError(f"{cfg.data}: no group {g!r} (groups: {', '.join(ds.groups)})")
    split = _split(cfg, bud, ds.samples)
    everything = FolderTrainingData(cfg.data, len(dataset_labels(cfg.data).labels))
    by_key = {s.key: s for s in everything.reference()}
    cache = PairCache(everything)
    scorer = _Scorer(
        cache,
        [by_key[s.key] for s in split.target_test],
        [by_key[s.key] for s in split.source_test],
        cfg.device,
    )
    settings = _settings(cfg, bud, split, ds.samples)
    console = Console(stderr=True)
    work = cfg.work_dir or Path(tempfile.mkdtemp(prefix="medloop-loop-"))
    work.mkdir(parents=True, exist_ok=True)
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
        train_keys=split.base_keys,
        device=cfg.device,
        max_val=bud.max_val_images,
        cache=cache,
    )
    base_seconds = time.perf_counter() - t0
    base_t, base_s = scorer.score(FolderArtifactStore(base_dir), base.version)
    base_clicks = (
        scorer.clicks(FolderArtifactStore(base_dir), base.version) if cfg.interactive else None
    )
    console.print(
        f"base: target Dice {base_t:.4f}, source Dice {base_s:.4f} ({base_seconds:.0f} s)"
    )
    plan = FolderArtifactStore(base_dir).get(base.version).manifest.plan
    header = {
        "machine": machine_description(cfg.device),
        "config": {
            **{k: str(v) if isinstance(v, Path) else v for k, v in cfg.__dict__.items()},
            "budget": bud.__dict__,
            "n_target_test": len(split.target_test),
            "n_source_test": len(split.source_test),
        },
        "base": {
            "target_dice": base_t,
            "source_dice": base_s,
            "seconds": base_seconds,
            "clicks": base_clicks,
            "plan": {
                k: plan.get(k)
                for k in ("patch_size", "channels", "steps", "scale", "target_spacing")
            },
        },
    }
    return LoopSetup(
        cfg, bud, split.pool, scorer, cache, settings.learning, work, base_dir, header, console
    )


def correct_and_finetune(
    setup: LoopSetup,
    workspace: Workspace,
    policy: LearningPolicy,
    samples: list[Sample],
    round_no: int,
) -> dict[str, Any]:
    """Submit ``samples``' masks as corrections, fine-tune per ``policy``, score; one row."""
    for smp in samples:
        workspace.corrections.add(
            smp.image.read_bytes(),
            smp.mask.read_bytes(),
            key=smp.key,
            held_out_share=setup.cfg.held_out_share,
            author="simulated-clinician",
            corrects_version=workspace.store.production(),
        )
    learner = workspace.learner(device=setup.cfg.device, cache=setup.cache)
    out = learner.finetune(policy)
    t_d, s_d = setup.scorer.score(workspace.store, workspace.store.require_production())
    c_t, c_s = setup.scorer.score(workspace.store, out.version)
    clicks = (
        setup.scorer.clicks(workspace.store, workspace.store.require_production())
        if setup.cfg.interactive
        else None
    )
    return {
        "clicks": clicks,
        "round": round_no,
        "n_corrections": round_no * setup.cfg.per_round,
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


def run_loop(cfg: LoopConfig, json_path: Path) -> dict[str, Any]:
    """Run every strategy and write the results to ``json_path``; returns them too."""
    known = {x.value for x in Strategy}
    for s in cfg.strategies:
        if s not in known:
            raise ConfigError(f"unknown strategy {s!r}; choose from {', '.join(sorted(known))}")
    setup = prepare_loop(cfg)
    results: dict[str, Any] = {**setup.header, "strategies": {}}
    for strat in cfg.strategies:
        workspace = setup.workspace(strat)
        policy = setup.policy.model_copy(update={"strategy": Strategy(strat)})
        rounds = []
        for r in range(cfg.rounds):
            picked = setup.pool[r * cfg.per_round : (r + 1) * cfg.per_round]
            row = correct_and_finetune(setup, workspace, policy, picked, r + 1)
            rounds.append(row)
            setup.console.print(
                f"{strat} round {r + 1}: target {row['target_dice']:.4f} source {row['source_dice']:.4f} "
                f"(candidate {row['candidate_target_dice']:.4f}/{row['candidate_source_dice']:.4f}, "
                f"{'promoted' if row['promoted'] else 'rejected'}, {row['seconds']:.1f} s)"
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
