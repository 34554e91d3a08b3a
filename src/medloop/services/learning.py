"""The learning engine: train a version, fine-tune it from corrections, gate every candidate.

The patent's claims 1-9 as one use case over two ports. Reference pairs and
corrections come from a :class:`~medloop.domain.ports.TrainingData`; versions, the
gate's verdicts and checkpoints go to an :class:`~medloop.domain.ports.ArtifactStore`.
The same :class:`Learner` runs behind the CLI (folder adapters), the server (database
and blob store) and unit tests (in memory)::

    learner = Learner(settings, data, store)
    learner.train()              # v0001 from the reference data; the first version is promoted
    learner.finetune()           # a candidate from production + corrections, gated
    learner.evaluate(None, "test")

A fine-tune starts from the production weights and trains on every correction so far
(weight *w*, acting as √w in sampling and √w in the loss) plus a replay sample of the
reference training pairs (weight 1). Every candidate is scored beside production on
the locked half of ``val`` and on the held-out corrections, and the project's
acceptance rule decides; the store records the verdict and promotes or rejects.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from medloop.domain.learning import Decision, EvalSummary
from medloop.domain.model import DataRef, ModelManifest, PreprocessSpec
from medloop.domain.plan import Plan
from medloop.domain.ports import (
    ArtifactStore,
    Checkpoint,
    TrainingData,
    VersionRecord,
)
from medloop.domain.settings import LearningPolicy, ProjectSettings, Strategy, TrainingOptions
from medloop.errors import DatasetError, NoProductionModel, TrainingError, TrainingInterrupted
from medloop.services.candidates import Gatekeeper, Provenance
from medloop.services.evaluation import evaluate_samples
from medloop.services.fingerprint import fingerprint
from medloop.services.inference_options import choose_inference_options, inference_cost
from medloop.services.pairs import PairCache
from medloop.services.planning import (
    build_manifest,
    choose_color,
    finetune_spec,
    plan_training,
    run_key_of,
    train_spec,
)
from medloop.services.replay import finetune_items
from medloop.services.splits import ReferenceSplit, split_reference

if TYPE_CHECKING:
    from medloop.ml.data import TrainItem
    from medloop.ml.inference import Predictor
    from medloop.ml.trainer import TrainCallbacks, TrainResult, TrainSpec

__all__ = ["RESERVE", "FinetuneOutcome", "Learner", "TrainOutcome"]

RESERVE = 0.08
"""Share of a training budget kept for choosing post-processing, scoring and the gate."""


@dataclass(frozen=True)
class TrainOutcome:
    """What training from scratch did; ``val`` is the new version on the locked set."""

    version: str
    promoted: bool
    decision: Decision
    val: EvalSummary
    seconds: float
    steps: int


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
    """Trains, fine-tunes and gates one project's model.

    Args:
        settings: the project's labels, learning policy, acceptance rule and training options.
        data: its reference pairs and corrections.
        store: where its versions live.
        device: ``cpu``, ``cuda`` or ``None`` (auto).
        cache: pairs already loaded (benchmarks share one across rounds).
    """

    def __init__(
        self,
        settings: ProjectSettings,
        data: TrainingData,
        store: ArtifactStore,
        device: str | None = None,
        cache: PairCache | None = None,
    ) -> None:
        self.settings, self.data, self.store, self.device = settings, data, store, device
        self.cache = cache.rebind(data) if cache is not None else PairCache(data)
        self._gate = Gatekeeper(store, self.cache, settings.acceptance, self.predictor, device)

    # -- reading ----------------------------------------------------------------------------
    def reference_split(self, max_val: int | None = None) -> ReferenceSplit:
        """The reference pairs by role: ``train``, ``select`` and ``locked`` (never ``test``)."""
        return split_reference(list(self.data.reference()), max_val)

    def predictor(self, version: str) -> Predictor:
        """A predictor of a stored version."""
        from medloop.ml.inference import Predictor

        record = self.store.get(version)
        return Predictor.from_bytes(record.manifest, self.store.read_file(version), self.device)

    def evaluate(self, version: str | None, split: str) -> tuple[str, EvalSummary]:
        """Score ``version`` (default production) on the reference pairs of ``split``.

        Raises:
            NoProductionModel: no version given and none in production.
            DatasetError: the split has no pairs.
        """
        name = version or self.store.production()
        if name is None:
            raise NoProductionModel("no model version is in production yet; train one first")
        samples = [s for s in self.data.reference() if s.split == split]
        if not samples:
            raise DatasetError(f"no reference pairs in split {split!r}")
        summary, _ = evaluate_samples(self.predictor(name), samples, self.cache, hd95=True)
        return name, summary

    def version_of_run(self, run_key: str) -> VersionRecord | None:
        return self._gate.version_of_run(run_key)  # see Gatekeeper.version_of_run

    # -- training from scratch ----------------------------------------------------------------
    def train(
        self,
        options: TrainingOptions | None = None,
        callbacks: TrainCallbacks | None = None,
        run_key: str | None = None,
        max_val: int | None = None,
        on_plan: Callable[[Plan], None] | None = None,
    ) -> TrainOutcome:
        """Plan from the data and the budget, train on ``train``, select on one half of
        ``val``, choose post-processing there, and gate on the other half.

        The first version is promoted; a later one must pass the acceptance rule against
        production on the same locked pairs. An interrupted run resumes from its
        checkpoint and its plan (keyed by ``run_key``, default: the options and pairs).
        """
        t_start = time.perf_counter()
        opts = options or self.settings.training
        split = self.reference_split(max_val)
        if not split.locked:
            raise DatasetError("no validation pairs: add reference pairs in split 'val'")
        key = run_key or run_key_of(opts, split.train)
        pending = self._gate.pending(run_key)
        if pending is not None:  # stored before the run was interrupted: judge it now
            scored = self._gate.rescore(pending, split.locked)
            verdict = self._gate.judge(scored, split.locked, ())
            self._clear(key)
            d, steps = verdict.decision, int(pending.metrics.get("steps", 0))
            return TrainOutcome(pending.name, d.accepted, d, scored.locked_val, 0.0, steps)
        plan, preprocess = self._plan(opts, split, key, t_start)
        if on_plan is not None:
            on_plan(plan)
        labels = self.settings.label_set
        manifest = build_manifest(plan, preprocess, labels)
        k = labels.num_classes
        items = [self.cache.item(s, preprocess, k) for s in split.train]
        val_items = [self.cache.item(s, preprocess, k) for s in split.select]
        budget = None if opts.steps is not None else opts.budget_s
        cost = inference_cost(manifest, split.select, split.locked, self.cache, self.device, budget)
        # What is left after planning and preparing the data (reading, resampling), less
        # what scoring on the selection and locked sets will take.
        left = opts.budget_s * (1 - RESERVE) - (time.perf_counter() - t_start) - cost.seconds
        spec = train_spec(plan, opts, left, self.device, cost.select_pass)
        checkpoint = self.store.checkpoint(key)
        result = self._fit(manifest, items, spec, callbacks, val_items=val_items, ckpt=checkpoint)
        manifest = choose_inference_options(
            build_manifest(plan, preprocess, self.settings.label_set),
            result.state_dict,
            split.select,
            self.cache,
            self.device,
            flips_note=None if cost.try_flips else cost.note,
        )
        refs = [
            DataRef(s.key, s.image_sha256, s.mask_sha256, "reference", 1.0) for s in split.train
        ]
        hyper = {"train": spec.to_dict(), "options": opts.to_json()}
        extra = {"run": run_key} if run_key else {}
        scored = self._gate.add(
            manifest, result, Provenance("train", None, refs, (), hyper, extra), split.locked
        )
        verdict = self._gate.judge(scored, split.locked, ())
        self._clear(key)
        return TrainOutcome(
            scored.record.name,
            verdict.decision.accepted,
            verdict.decision,
            scored.locked_val,
            result.seconds,
            result.steps,
        )

    def _clear(self, key: str) -> None:
        """Forget a finished run's checkpoint and plan."""
        self.store.checkpoint(key).clear()
        self.store.checkpoint(f"{key}-plan").clear()

    def _plan(
        self, opts: TrainingOptions, split: ReferenceSplit, key: str, t_start: float
    ) -> tuple[Plan, PreprocessSpec]:
        """The run's plan: saved with its checkpoint, so a resumed run keeps it."""
        slot = self.store.checkpoint(f"{key}-plan")
        saved = slot.load()
        if saved is not None:
            data = json.loads(saved)
            return Plan.from_dict(data["plan"]), PreprocessSpec.from_dict(data["preprocess"])
        labels = self.settings.label_set
        fp = fingerprint(split.train, self.cache, labels.num_foreground, self.store)
        color = choose_color(opts.color, [self.cache.pair(s).image.pixels for s in split.train])
        left = opts.budget_s * (1 - RESERVE) - (time.perf_counter() - t_start)
        plan, preprocess = plan_training(fp, opts, labels, color, max(left, 1.0), self.device)
        plan = replace(plan, fingerprint=fp.to_dict())
        slot.save(json.dumps({"plan": plan.to_dict(), "preprocess": preprocess.to_dict()}).encode())
        return plan, preprocess

    # -- fine-tuning ------------------------------------------------------------------------
    def finetune(
        self,
        policy: LearningPolicy | None = None,
        callbacks: TrainCallbacks | None = None,
        run_key: str | None = None,
    ) -> FinetuneOutcome:
        """Train a candidate from production per ``policy`` (default: the project's), then gate it.

        With ``run_key`` (a job's) it resumes from its checkpoint and parent, or only
        judges the candidate it had already stored.

        Raises:
            NoProductionModel: nothing in production to start from.
            TrainingError: no correction to learn from yet.
        """
        t_start = time.perf_counter()
        policy = policy or self.settings.learning
        parent = self._finetune_parent(run_key)
        parent_rec = self.store.get(parent)
        corrections = list(self.data.corrections())
        trained = [c for c in corrections if not c.held_out]
        held = [c for c in corrections if c.held_out]
        if not trained:
            raise TrainingError(
                "no corrections to learn from yet (held-out ones are never trained on)"
            )
        split = self.reference_split()
        manifest = parent_rec.manifest
        pending = self._gate.pending(run_key)
        if pending is not None:  # stored before the run was interrupted: judge it now
            scored, seconds = self._gate.rescore(pending, split.locked), 0.0
        else:
            items, refs = finetune_items(
                policy, manifest, trained, split.train, self.cache, len(corrections)
            )
            spec, init = self._finetune_spec(policy, parent, len(corrections))
            ckpt = self.store.checkpoint(run_key) if run_key else None
            result = self._fit(manifest, items, spec, callbacks, init=init, ckpt=ckpt)
            retrain = policy.strategy == Strategy.RETRAIN
            hyper = {
                "train": spec.to_dict(),
                "policy": policy.to_json(),
                "rule": self.settings.acceptance.to_json(),
            }
            provenance = Provenance(
                "retrain" if retrain else "finetune",
                None if retrain else parent,
                refs,
                tuple(c.id for c in held),
                hyper,
                {"production_at_start": parent, **({"run": run_key} if run_key else {})},
            )
            scored = self._gate.add(manifest, result, provenance, split.locked)
            seconds = result.seconds
        verdict = self._gate.judge(scored, split.locked, held)
        if run_key:
            self._clear(run_key)
        if verdict.production_val is None:
            raise TrainingError(f"production was withdrawn while {scored.record.name} trained")
        return FinetuneOutcome(
            version=scored.record.name,
            parent=parent,
            promoted=verdict.decision.accepted,
            decision=verdict.decision,
            candidate_val=scored.locked_val,
            production_val=verdict.production_val,
            candidate_heldout=verdict.candidate_heldout,
            production_heldout=verdict.production_heldout,
            n_trained_corrections=len(trained),
            n_heldout_corrections=len(held),
            seconds=seconds,
            total_seconds=time.perf_counter() - t_start,
        )

    def _finetune_parent(self, run_key: str | None) -> str:
        """Production now or, for a resumed run, the parent it started from."""
        slot = self.store.checkpoint(f"{run_key}-plan") if run_key else None
        saved = slot.load() if slot is not None else None
        if saved is not None:
            return str(json.loads(saved)["parent"])
        parent = self.store.production()
        if parent is None:
            raise NoProductionModel("no model version is in production yet; train one first")
        if slot is not None:
            slot.save(json.dumps({"parent": parent}).encode())
        return parent

    def _finetune_spec(
        self, policy: LearningPolicy, parent: str, n_corrections: int
    ) -> tuple[TrainSpec, dict[str, Any] | None]:
        """Hyper-parameters and initial weights: production's, or none for ``retrain``."""
        from medloop.ml.inference import state_dict_from_bytes

        parent_plan = self.store.get(parent).manifest.plan
        spec = finetune_spec(policy, parent_plan, n_corrections, self.device)
        if policy.strategy == Strategy.RETRAIN:
            return spec, None
        return spec, state_dict_from_bytes(self.store.read_file(parent))

    # -- shared steps -------------------------------------------------------------------------
    def _fit(
        self,
        manifest: ModelManifest,
        items: list[TrainItem],
        spec: TrainSpec,
        callbacks: TrainCallbacks | None,
        *,
        val_items: list[TrainItem] | None = None,
        init: dict[str, Any] | None = None,
        ckpt: Checkpoint | None = None,
    ) -> TrainResult:
        from medloop.ml.trainer import train

        result = train(
            manifest,
            items,
            spec,
            val_items=val_items,
            init_state=init,
            checkpoint=ckpt,
            callbacks=callbacks,
        )
        if result.stopped:
            resume = " (its checkpoint is kept: run it again to resume)" if ckpt else ""
            raise TrainingInterrupted(f"stopped at step {result.steps} of {spec.steps}{resume}")
        return result
