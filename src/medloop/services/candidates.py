"""A trained candidate's last two steps: stored with its lineage, then judged against production.

:class:`Gatekeeper` is the one place that scores a candidate on the locked set, stores
it through the :class:`~medloop.domain.ports.ArtifactStore`, scores production on the
same images (and both on the held-out corrections), decides with
:func:`~medloop.domain.gate.decide` and has the store record the verdict — for
training from scratch and for fine-tuning alike.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from medloop.domain.gate import decide
from medloop.domain.learning import Decision, EvalSummary
from medloop.domain.model import DataRef, Lineage, ModelManifest, VersionStatus
from medloop.domain.ports import ArtifactStore, CorrectionSample, PairSample, VersionRecord
from medloop.domain.settings import AcceptanceRule
from medloop.errors import TrainingError
from medloop.services.common import now_iso, software_versions
from medloop.services.evaluation import SampleScore, evaluate_samples, score_samples, summarize
from medloop.services.locked_scores import LOCKED_SCORES_FILE, encode, recall
from medloop.services.pairs import PairCache
from medloop.services.predictors import version_files

if TYPE_CHECKING:
    from medloop.ml.inference import Predictor
    from medloop.ml.trainer import TrainResult

__all__ = ["Gatekeeper", "Provenance", "Scored", "Verdict"]


@dataclass(frozen=True)
class Provenance:
    """Where a candidate comes from, for its lineage."""

    kind: str
    parent: str | None
    data: Sequence[DataRef]
    held_out: tuple[str, ...]
    hyperparameters: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scored:
    """A stored candidate, its predictor and its per-image, per-class Dice on the locked set."""

    record: VersionRecord
    predictor: Predictor
    locked_val: EvalSummary
    locked_scores: np.ndarray


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    production: str | None
    production_val: EvalSummary | None
    candidate_heldout: EvalSummary | None
    production_heldout: EvalSummary | None


def _summary(s: EvalSummary | None) -> dict[str, Any] | None:
    return None if s is None else s.to_dict()


class Gatekeeper:
    """Stores and judges candidates of one project.

    Args:
        store: the project's versions.
        cache: its pairs, loaded once.
        rule: the acceptance rule.
        predictor: loads a stored version (production, for the comparison).
        device: where candidates run.
    """

    def __init__(
        self,
        store: ArtifactStore,
        cache: PairCache,
        rule: AcceptanceRule,
        predictor: Callable[[str], Predictor],
        device: str | None,
    ) -> None:
        self.store, self.cache, self.rule = store, cache, rule
        self.predictor, self.device = predictor, device

    def add(
        self,
        manifest: ModelManifest,
        result: TrainResult,
        provenance: Provenance,
        locked: Sequence[PairSample],
    ) -> Scored:
        """Score the trained weights on the locked set and store them as a candidate."""
        from medloop.ml.inference import Predictor

        cand = Predictor(manifest, result.state_dict, self.device)
        scores = score_samples(cand, locked, self.cache)
        cand_val, cand_locked = summarize(scores, manifest.labels.num_foreground)
        lineage = Lineage(
            kind=provenance.kind,
            parent=provenance.parent,
            data=tuple(provenance.data),
            held_out_corrections=provenance.held_out,
            hyperparameters=provenance.hyperparameters,
            seed=int(provenance.hyperparameters["train"]["seed"]),
            software=software_versions(),
            created_at=now_iso(),
            extra={
                "device": result.device,
                "precision": result.precision,
                "best_step": result.best_step,
                "validation": result.validation,
                "validation_seconds": round(result.validation_seconds, 2),
                "locked": [s.key for s in locked],
                **provenance.extra,
            },
        )
        metrics = {
            "locked_val": cand_val.to_dict(),
            "train_seconds": result.seconds,
            "steps": result.steps,
        }
        files = version_files(manifest, result.state_dict)  # weights.pt and model.onnx
        files[LOCKED_SCORES_FILE] = encode(locked, scores, cand.device.type)
        record = self.store.add_version(files, manifest, lineage, metrics)
        return Scored(record, cand, cand_val, cand_locked)

    def version_of_run(self, run_key: str) -> VersionRecord | None:
        """The version a run (e.g. ``job-<id>``) stored, if it got that far.

        A run started again after its process died (``kill -9``, a lost worker) finds
        its candidate here instead of making a second one.
        """
        for record in reversed(self.store.versions()):
            if record.lineage.extra.get("run") == run_key:
                return record
        return None

    def pending(self, run_key: str | None) -> VersionRecord | None:
        """The run's stored candidate still waiting for its verdict (``TrainingError`` if
        the run already has its verdict)."""
        prior = self.version_of_run(run_key) if run_key else None
        if prior is not None and prior.status != VersionStatus.CANDIDATE:
            raise TrainingError(f"run {run_key} already made {prior.name} ({prior.status})")
        return prior

    def rescore(self, record: VersionRecord, locked: Sequence[PairSample]) -> Scored:
        """A stored candidate scored again (its run stopped after storing it, before the verdict)."""
        cand = self.predictor(record.name)
        cand_val, cand_locked = evaluate_samples(cand, locked, self.cache)
        return Scored(record, cand, cand_val, cand_locked)

    def _production_locked(
        self,
        name: str,
        locked: Sequence[PairSample],
        candidate: Predictor,
        production: Callable[[], Predictor],
    ) -> tuple[EvalSummary, np.ndarray, int]:
        """Production's summary and per-image Dice on ``locked``, and how many images'
        scores were recalled from its :data:`LOCKED_SCORES_FILE` instead of scored again
        (on the candidate's kind of device); ``production`` loads its predictor, only
        when some image must be scored."""
        record = self.store.get(name)
        k = candidate.manifest.labels.num_foreground
        known: list[SampleScore | None] = [None] * len(locked)
        if LOCKED_SCORES_FILE in record.files:
            data = self.store.read_file(name, LOCKED_SCORES_FILE)
            known = recall(data, locked, candidate.device.type, k)
        missing = [s for s, sc in zip(locked, known, strict=True) if sc is None]
        fresh = iter(score_samples(production(), missing, self.cache) if missing else [])
        scores = [sc if sc is not None else next(fresh) for sc in known]
        val, per_image = summarize(scores, k)
        return val, per_image, len(locked) - len(missing)

    def judge(
        self,
        scored: Scored,
        locked: Sequence[PairSample],
        held: Sequence[CorrectionSample],
    ) -> Verdict:
        """Score production beside the candidate, decide on paired differences, record once."""
        prod_name = self.store.production()
        prod_val = cand_held = prod_held = None
        prod_locked = cand_held_scores = prod_held_scores = None
        recalled = 0
        if prod_name is not None:
            prod = functools.cache(functools.partial(self.predictor, prod_name))  # loaded once
            prod_val, prod_locked, recalled = self._production_locked(
                prod_name, locked, scored.predictor, prod
            )
            if held:
                cand_held, cand_held_scores = evaluate_samples(scored.predictor, held, self.cache)
                prod_held, prod_held_scores = evaluate_samples(prod(), held, self.cache)
        decision, checks = decide(
            self.rule, scored.locked_scores, prod_locked, cand_held_scores, prod_held_scores
        )
        report = {
            "against": prod_name,
            "accepted": decision.accepted,
            "reasons": list(decision.reasons),
            "rule": self.rule.to_json(),
            "basis": [c.to_dict() for c in checks],
            "locked": [s.key for s in locked],
            "candidate": {
                "locked_val": scored.record.metrics["locked_val"],
                "heldout_corrections": _summary(cand_held),
            },
            "production": {
                "locked_val": _summary(prod_val),
                "locked_recalled": recalled,
                "heldout_corrections": _summary(prod_held),
            },
        }
        self.store.record_verdict(scored.record.name, decision, report)
        return Verdict(decision, prod_name, prod_val, cand_held, prod_held)
