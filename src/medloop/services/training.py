"""Train a project's first (or a fresh) model version from a reference dataset."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medloop.domain.labels import LabelSet
from medloop.domain.learning import AcceptanceRule, Decision, EvalSummary, LearningPolicy
from medloop.domain.model import DataRef, Lineage, ModelManifest, NetworkSpec, PreprocessSpec
from medloop.errors import ConfigError, DatasetError
from medloop.io import Dataset, Sample, load_dataset
from medloop.registry import ModelRegistry
from medloop.services.common import now_iso, software_versions, temporary_weights
from medloop.services.evaluation import EvalCase, evaluate_cases
from medloop.services.items import PairLoader
from medloop.services.project import ProjectConfig, load_project, save_project

if TYPE_CHECKING:
    from medloop.ml.trainer import TrainCallbacks

__all__ = ["TrainOptions", "TrainOutcome", "split_reference", "train_base"]


@dataclass(frozen=True)
class TrainOptions:
    """What ``medloop train`` can set. Patch size must be a multiple of ``2**(len(channels)-1)``."""

    labels: tuple[str, ...] = ("foreground",)
    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    patch_size: int = 256
    steps: int = 2000
    batch_size: int = 8
    lr: float = 1e-3
    val_every: int = 200
    max_val_images: int | None = None
    color: str = "auto"
    group: str | None = None
    seed: int = 0
    device: str | None = None
    policy: LearningPolicy = field(default_factory=LearningPolicy)
    rule: AcceptanceRule = field(default_factory=AcceptanceRule)


@dataclass(frozen=True)
class TrainOutcome:
    version: str
    promoted: bool
    decision: Decision
    val: EvalSummary
    seconds: float
    steps: int


def split_reference(
    ds: Dataset, max_val: int | None = None
) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """``(train, select, locked)``.

    Uses the dataset's splits; without any, every 10th sample (by key hash) is
    validation. Validation is halved (by key hash): ``select`` picks the best
    checkpoint while training, ``locked`` is never seen by training or selection and
    is what the promotion gate scores (scoring on the selection set would favour the
    selected model and reject every later candidate). ``max_val`` caps each half.
    ``test`` samples are never returned: they stay locked away.
    """
    if any(s.split for s in ds.samples):
        train = [s for s in ds.samples if s.split == "train"]
        val = [s for s in ds.samples if s.split == "val"]
    else:
        ranked = sorted(ds.samples, key=lambda s: hashlib.sha256(s.key.encode()).hexdigest())
        n_val = max(1, len(ranked) // 10) if len(ranked) >= 2 else 0
        val, train = ranked[:n_val], ranked[n_val:]
    if not train:
        raise DatasetError(f"{ds.root}: no training pairs (split 'train' is empty)")
    ranked = sorted(val, key=lambda s: hashlib.sha256(s.key.encode()).hexdigest())
    if len(ranked) >= 2:
        select, locked = ranked[0::2], ranked[1::2]
    else:
        select, locked = ranked, ranked
    if max_val is not None:
        select, locked = select[:max_val], locked[:max_val]

    def by_key(xs: list[Sample]) -> list[Sample]:
        return sorted(xs, key=lambda s: s.key)

    return by_key(train), by_key(select), by_key(locked)


def _choose_color(requested: str, pairs: list[Any]) -> str:
    if requested in ("gray", "rgb"):
        return requested
    if requested != "auto":
        raise ConfigError(f"color must be auto, gray or rgb, got {requested!r}")
    for p in pairs:
        px = p.image.pixels
        if px.shape[2] == 3 and not (px[..., 0] == px[..., 1]).all():
            return "rgb"
    return "gray"


def _run_key(options: TrainOptions, keys: list[str]) -> str:
    blob = json.dumps({"o": asdict(options), "k": keys}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def train_base(
    data: Path,
    registry_root: Path,
    options: TrainOptions,
    callbacks: TrainCallbacks | None = None,
    replace_reference: bool = False,
) -> TrainOutcome:
    """Train a version from scratch on ``data``'s train split, select on val, gate it.

    The first version of a registry is promoted; a later one must pass the project's
    acceptance rule against production. An interrupted run resumes from its
    checkpoint when started again with the same options and data.
    """
    from medloop.ml.inference import Predictor
    from medloop.ml.trainer import TrainSpec, train

    ds = load_dataset(data)
    if options.group is not None:
        ds = ds.select(group=options.group)
        if not len(ds):
            raise DatasetError(f"{data}: no pairs in group {options.group!r}")
    train_s, select_s, val_s = split_reference(ds, options.max_val_images)
    labels = LabelSet.from_names(options.labels)
    registry = ModelRegistry(registry_root)
    project = ProjectConfig(
        labels=labels,
        reference_root=str(Path(data).resolve()),
        train_keys=tuple(s.key for s in train_s),
        val_keys=tuple(s.key for s in val_s),
        policy=options.policy,
        rule=options.rule,
        base_hyperparameters={},
    )
    try:
        existing: ProjectConfig | None = load_project(registry_root)
    except ConfigError:
        existing = None
    reference_changed = existing is not None and existing.val_keys != project.val_keys
    if reference_changed and not replace_reference:
        raise ConfigError(
            f"{registry_root} already holds a project with another locked validation set; "
            "use a new --registry for a different dataset"
        )

    loader = PairLoader(labels.num_foreground)
    pairs = [loader.pair(s.key, s.image, s.mask, s.group) for s in train_s]
    preprocess = PreprocessSpec(color=_choose_color(options.color, pairs))
    network = NetworkSpec(
        in_channels=preprocess.channels, out_channels=labels.num_classes, channels=options.channels
    )
    manifest = ModelManifest(network, preprocess, labels, (options.patch_size, options.patch_size))
    items = [loader.item(s.key, s.image, s.mask, preprocess) for s in train_s]
    val_items = [loader.item(s.key, s.image, s.mask, preprocess) for s in select_s]
    spec = TrainSpec(
        steps=options.steps,
        batch_size=options.batch_size,
        lr=options.lr,
        val_every=options.val_every if val_items else 0,
        seed=options.seed,
        device=options.device,
        warmup_steps=min(50, max(1, options.steps // 10)),
    )
    work_dir = registry_root / ".work" / _run_key(options, [s.key for s in train_s])
    work_dir.mkdir(parents=True, exist_ok=True)
    result = train(
        manifest, items, spec, val_items=val_items, work_dir=work_dir, callbacks=callbacks
    )
    hyper = {
        "train": spec.to_dict(),
        "options": {**asdict(options), "policy": options.policy.to_dict()},
    }

    predictor = Predictor(manifest, result.state_dict, options.device)
    cases = [EvalCase(s.key, s.image, s.mask, s.group) for s in val_s]
    val_summary, _ = evaluate_cases(predictor, cases, loader) if cases else (None, [])
    if val_summary is None:
        raise DatasetError(f"{data}: no validation pairs to evaluate on")
    lineage = Lineage(
        kind="train",
        parent=None,
        data=tuple(DataRef(p.key, p.image_sha256, p.mask_sha256, "reference", 1.0) for p in pairs),
        held_out_corrections=(),
        hyperparameters=hyper,
        seed=options.seed,
        software=software_versions(),
        reference_root=project.reference_root,
        created_at=now_iso(),
        extra={"device": result.device, "best_step": result.best_step},
    )
    metrics = {
        "locked_val": val_summary.to_dict(),
        "train_seconds": result.seconds,
        "steps": result.steps,
    }
    with temporary_weights(result.state_dict, registry_root / ".staging") as wfile:
        record = registry.add_version(wfile, manifest, lineage, metrics)
    project = replace(project, base_hyperparameters=hyper)
    prod_val = None
    if existing is None or reference_changed:
        save_project(registry_root, project)
    if reference_changed:
        # The locked set changed: score production on the new one, not its old figures.
        from medloop.errors import NoProductionModel

        try:
            prod = registry.resolve(None)
            prod_pred = Predictor.load(
                registry.manifest(prod.name), prod.weights_path, options.device
            )
            prod_val, _ = evaluate_cases(prod_pred, cases, loader)
        except NoProductionModel:
            prod_val = None
    decision = _gate_against_production(registry, record.name, val_summary, project.rule, prod_val)
    shutil.rmtree(work_dir, ignore_errors=True)
    return TrainOutcome(
        record.name, decision.accepted, decision, val_summary, result.seconds, result.steps
    )


def _gate_against_production(
    registry: ModelRegistry,
    name: str,
    val: EvalSummary,
    rule: AcceptanceRule,
    prod_val: EvalSummary | None = None,
) -> Decision:
    from medloop.errors import NoProductionModel

    try:
        current = registry.production()
        prod_name: str | None = current
        if prod_val is None:
            prod_val = EvalSummary.from_dict(registry.get(current).metrics["locked_val"])
    except NoProductionModel:
        prod_name, prod_val = None, None
    decision = rule.decide(val, prod_val)
    registry.write_report(
        name,
        {
            "against": prod_name,
            "accepted": decision.accepted,
            "reasons": list(decision.reasons),
            "candidate": {"locked_val": val.to_dict()},
        },
    )
    if decision.accepted:
        registry.promote(name, reason="; ".join(decision.reasons))
    else:
        from medloop.domain.model import VersionStatus

        registry.set_status(name, VersionStatus.REJECTED, reason="; ".join(decision.reasons))
    return decision
