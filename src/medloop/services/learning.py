"""Learn from corrections: store them, fine-tune a candidate, gate it.

The patent's claims 1, 2, 7, 8, 9: start from the production weights; train on all
corrections so far at weight *w* plus a replay sample of the reference training
data at weight 1 (weights act both in sampling and in the loss); the candidate
names its parent and every correction it used; it is evaluated on the locked
validation set and on held-out corrections and promoted only if the project's
acceptance rule passes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medloop.domain.learning import AcceptanceRule, Decision, EvalSummary, LearningPolicy, Strategy
from medloop.domain.model import DataRef, Lineage, VersionStatus
from medloop.errors import TrainingError
from medloop.io import load_dataset
from medloop.registry import ModelRegistry
from medloop.registry.corrections import CorrectionRecord, CorrectionSource, CorrectionStore
from medloop.services.common import now_iso, software_versions, temporary_weights
from medloop.services.evaluation import EvalCase, evaluate_cases
from medloop.services.items import PairLoader
from medloop.services.project import ProjectConfig, load_project

if TYPE_CHECKING:
    from medloop.ml.data import TrainItem
    from medloop.ml.trainer import TrainCallbacks

__all__ = ["FinetuneOutcome", "Learner", "add_corrections"]


def correction_store(registry_root: Path) -> CorrectionStore:
    return CorrectionStore(registry_root / "corrections")


def add_corrections(
    registry_root: Path, data: Path, *, author: str = "cli", corrects_version: str | None = None
) -> list[CorrectionRecord]:
    """Validate and store every pair of dataset ``data`` as a correction."""
    project = load_project(registry_root)
    ds = load_dataset(data)
    loader = PairLoader(project.labels.num_foreground)
    for s in ds.samples:  # validate everything before storing anything
        loader.pair(s.key, s.image, s.mask)
    store = correction_store(registry_root)
    return [
        store.add(
            s.image,
            s.mask,
            key=s.key,
            held_out_share=project.policy.held_out_share,
            author=author,
            corrects_version=corrects_version,
        )
        for s in ds.samples
    ]


@dataclass(frozen=True)
class FinetuneOutcome:
    """What one fine-tune + gate did. ``seconds`` covers training; ``total_seconds`` everything."""

    version: str
    parent: str
    promoted: bool
    decision: Decision
    candidate_val: EvalSummary
    production_val: EvalSummary
    candidate_heldout: EvalSummary | None
    production_heldout: EvalSummary | None
    n_trained_corrections: int
    n_heldout_corrections: int
    seconds: float
    total_seconds: float


class Learner:
    """Fine-tunes one registry's production model from its corrections.

    Holds a :class:`PairLoader` so repeated rounds (benchmarks, a long-running
    server) do not decode the same reference images again.
    """

    def __init__(
        self,
        registry_root: Path,
        device: str | None = None,
        loader: PairLoader | None = None,
        corrections: CorrectionSource | None = None,
    ) -> None:
        self.root = Path(registry_root)
        self.registry = ModelRegistry(self.root)
        self.project: ProjectConfig = load_project(self.root)
        self.store = correction_store(self.root)
        self.corrections: CorrectionSource = corrections or self.store
        self.device = device
        self.loader = loader or PairLoader(self.project.labels.num_foreground)
        ref = load_dataset(self.project.reference_root)
        self._ref = {s.key: s for s in ref.samples}

    def _reference(self, keys: tuple[str, ...]) -> list[EvalCase]:
        missing = [k for k in keys if k not in self._ref]
        if missing:
            raise TrainingError(
                f"reference data changed: {len(missing)} pairs are gone from "
                f"{self.project.reference_root} (first: {missing[0]})"
            )
        return [
            EvalCase(k, self._ref[k].image, self._ref[k].mask, self._ref[k].group) for k in keys
        ]

    def _correction_cases(self, recs: list[CorrectionRecord]) -> list[EvalCase]:
        return [
            EvalCase(r.id, self.corrections.path(r.image), self.corrections.path(r.mask))
            for r in recs
        ]

    def finetune(
        self,
        policy: LearningPolicy | None = None,
        rule: AcceptanceRule | None = None,
        callbacks: TrainCallbacks | None = None,
    ) -> FinetuneOutcome:
        """Train a candidate from production per ``policy`` (project default), then gate it."""
        from medloop.ml.inference import Predictor
        from medloop.ml.trainer import TrainSpec, train

        t_start = time.perf_counter()
        policy = policy or self.project.policy
        rule = rule or self.project.rule
        parent = self.registry.production()
        manifest = self.registry.manifest(parent)
        spec_pre = manifest.preprocess
        recs = self.corrections.latest_per_image()
        trained = [r for r in recs if not r.held_out]
        held = [r for r in recs if r.held_out]
        if not trained:
            raise TrainingError(
                "no corrections to learn from yet (held-out ones are never trained on)"
            )

        strategy = policy.strategy
        w = policy.correction_weight if strategy == Strategy.WEIGHTED_REPLAY else 1.0
        ref_cases = self._reference(self.project.train_keys)
        if strategy == Strategy.WEIGHTED_REPLAY:
            rng = np.random.default_rng([policy.seed, len(recs)])
            n = min(policy.replay_size, len(ref_cases))
            pick = sorted(rng.choice(len(ref_cases), size=n, replace=False).tolist()) if n else []
            replay = [ref_cases[i] for i in pick]
        elif strategy == Strategy.CORRECTIONS_ONLY:
            replay = []
        else:
            replay = ref_cases

        items: list[TrainItem] = []
        refs: list[DataRef] = []
        for r, case in zip(trained, self._correction_cases(trained), strict=True):
            items.append(self.loader.item(case.key, case.image, case.mask, spec_pre, w))
            refs.append(DataRef(r.id, r.image_sha256, r.mask_sha256, "correction", w))
        for case in replay:
            items.append(self.loader.item(case.key, case.image, case.mask, spec_pre, 1.0))
            pair = self.loader.pair(case.key, case.image, case.mask)
            refs.append(DataRef(case.key, pair.image_sha256, pair.mask_sha256, "replay", 1.0))

        base = self.project.base_hyperparameters.get("train", {})
        if strategy == Strategy.RETRAIN:
            init = None
            spec = TrainSpec(
                steps=int(base.get("steps", policy.steps)),
                batch_size=int(base.get("batch_size", policy.batch_size)),
                lr=float(base.get("lr", 1e-3)),
                warmup_steps=int(base.get("warmup_steps", 50)),
                val_every=0,
                seed=policy.seed,
                device=self.device,
            )
        else:
            import torch

            init = torch.load(
                self.registry.get(parent).weights_path, map_location="cpu", weights_only=True
            )
            spec = TrainSpec(
                steps=policy.steps,
                batch_size=policy.batch_size,
                lr=policy.lr,
                warmup_steps=max(1, policy.steps // 10),
                val_every=0,
                seed=policy.seed + len(recs),
                device=self.device,
            )
        result = train(manifest, items, spec, init_state=init, callbacks=callbacks)

        val_cases = self._reference(self.project.val_keys)
        held_cases = self._correction_cases(held)
        cand = Predictor(manifest, result.state_dict, self.device)
        cand_val, _ = evaluate_cases(cand, val_cases, self.loader)
        prod_val = EvalSummary.from_dict(self.registry.get(parent).metrics["locked_val"])
        cand_held = prod_held = None
        if held_cases:
            prod = Predictor.load(manifest, self.registry.get(parent).weights_path, self.device)
            cand_held, _ = evaluate_cases(cand, held_cases, self.loader)
            prod_held, _ = evaluate_cases(prod, held_cases, self.loader)
        decision = rule.decide(cand_val, prod_val, cand_held, prod_held)

        lineage = Lineage(
            kind="retrain" if strategy == Strategy.RETRAIN else "finetune",
            parent=None if strategy == Strategy.RETRAIN else parent,
            data=tuple(refs),
            held_out_corrections=tuple(r.id for r in held),
            hyperparameters={
                "train": spec.to_dict(),
                "policy": policy.to_dict(),
                "rule": rule.to_dict(),
            },
            seed=spec.seed,
            software=software_versions(),
            reference_root=self.project.reference_root,
            created_at=now_iso(),
            extra={"device": result.device, "production_at_start": parent},
        )
        metrics = {
            "locked_val": cand_val.to_dict(),
            "heldout_corrections": None if cand_held is None else cand_held.to_dict(),
            "train_seconds": result.seconds,
            "steps": result.steps,
        }
        with temporary_weights(result.state_dict, self.root / ".staging") as wfile:
            record = self.registry.add_version(wfile, manifest, lineage, metrics)
        self.registry.write_report(
            record.name,
            {
                "against": parent,
                "accepted": decision.accepted,
                "reasons": list(decision.reasons),
                "candidate": metrics,
                "production": {
                    "locked_val": prod_val.to_dict(),
                    "heldout_corrections": None if prod_held is None else prod_held.to_dict(),
                },
            },
        )
        reason = "; ".join(decision.reasons)
        if decision.accepted:
            self.registry.promote(record.name, reason=reason)
        else:
            self.registry.set_status(record.name, VersionStatus.REJECTED, reason=reason)
        return FinetuneOutcome(
            version=record.name,
            parent=parent,
            promoted=decision.accepted,
            decision=decision,
            candidate_val=cand_val,
            production_val=prod_val,
            candidate_heldout=cand_held,
            production_heldout=prod_held,
            n_trained_corrections=len(trained),
            n_heldout_corrections=len(held),
            seconds=result.seconds,
            total_seconds=time.perf_counter() - t_start,
        )
