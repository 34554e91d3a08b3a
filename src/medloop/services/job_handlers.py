"""What the job worker runs: train, fine-tune, evaluate, DICOMweb sync, reference import and
erasure jobs of a project.

The learning jobs build the engine's :class:`~medloop.services.learning.Learner` from
the project's :class:`~medloop.domain.settings.ProjectSettings`, its data in the
database (:class:`~medloop.services.training_data.DbTrainingData`) and its versions
in the database and blob store (:class:`~medloop.storage.DbArtifactStore`); a job's
options arrive typed (:attr:`~medloop.domain.jobs.JobRecord.spec`). They record their loss
and validation Dice as the job's curve (:mod:`medloop.services.curves`).

A learning job's run is named after the job (``job-<id>``): an attempt after a crash,
on this worker or another, resumes from the run's checkpoint in the artifact store,
and one whose candidate was already stored or judged makes no second version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from medloop.domain.jobs import EvaluateJob, FinetuneJob, JobRecord, TrainJob
from medloop.domain.model import VersionStatus
from medloop.domain.records import ProjectRecord
from medloop.errors import ConfigError, TrainingInterrupted
from medloop.jobs.worker import Handler, JobCancelled, JobContext
from medloop.services.curves import CurveRecorder
from medloop.services.dicom_sync import DicomSync
from medloop.services.erasure import Erasures
from medloop.services.reference_import import ReferenceImport
from medloop.services.training_data import DbTrainingData
from medloop.storage import repositories as repo
from medloop.storage.artifacts import DbArtifactStore
from medloop.storage.blobs import BlobStore
from medloop.storage.database import Database

if TYPE_CHECKING:
    from medloop.domain.plan import Plan
    from medloop.ml.trainer import TrainCallbacks
    from medloop.services.learning import Learner

__all__ = ["LearningJobs", "build_handlers"]


def _callbacks(ctx: JobContext, what: str, curve: CurveRecorder) -> TrainCallbacks:
    from medloop.ml.trainer import TrainCallbacks

    def on_step(step: int, total: int, loss: float) -> None:
        curve.loss(step, total, loss)
        # Progress moves every step; the log gets at most ~20 step lines per run, so the
        # job's 50-line tail keeps resume and validation lines in view.
        every = max(1, total // 20)
        line = f"{what}: step {step}/{total} loss {loss:.4f}"
        ctx.progress(0.9 * step / total, line if step % every == 0 or step == total else None)

    def on_validate(step: int, dice: float) -> None:
        curve.val_dice(step, dice)
        ctx.log(f"{what}: step {step} validation Dice {dice:.4f}")

    def on_resume(step: int) -> None:
        ctx.log(f"{what}: resumed from the checkpoint at step {step}")

    return TrainCallbacks(
        on_step=on_step, on_validate=on_validate, should_stop=ctx.cancelled, on_resume=on_resume
    )


def _already_judged(learner: Learner, run: str) -> dict[str, Any] | None:
    """The result of a run that stored and judged its version before its attempt ended."""
    prior = learner.version_of_run(run)
    if prior is None or prior.status == VersionStatus.CANDIDATE:
        return None
    report = prior.report or {}
    return {
        "version": prior.name,
        "parent": prior.parent,
        "promoted": bool(report.get("accepted")),
        "reasons": list(report.get("reasons", [])),
        "resumed": True,
    }


S = TypeVar("S", TrainJob, FinetuneJob, EvaluateJob)


def _typed(job: JobRecord, kind: type[S]) -> S:
    """The job's options, typed; ``ConfigError`` for a job of another kind."""
    spec = job.spec
    if not isinstance(spec, kind):
        raise ConfigError(f"job {job.id} is a {job.kind} job, not a {kind.__name__}")
    return spec


class LearningJobs:
    """Train, fine-tune and evaluate jobs over the server's adapters.

    Args:
        db: the database.
        blobs: the blob store.
        device: ``cpu``, ``cuda`` or ``None`` (auto).
        max_pixels: images with more pixels are refused.
    """

    def __init__(self, db: Database, blobs: BlobStore, device: str | None, max_pixels: int) -> None:
        self.db, self.blobs, self.device, self.max_pixels = db, blobs, device, max_pixels

    def learner(self, project: ProjectRecord) -> Learner:
        """The engine for ``project``, reading and writing only through the server's adapters."""
        from medloop.services.learning import Learner

        settings = project.settings
        data = DbTrainingData(
            self.db, self.blobs, project.id, settings.label_set.num_foreground, self.max_pixels
        )
        return Learner(
            settings, data, DbArtifactStore(self.db, self.blobs, project.id), self.device
        )

    def _curve(self, job: JobRecord) -> CurveRecorder:
        return CurveRecorder(self.db, job.id, max(1, job.attempts))

    def _project(self, job: JobRecord) -> ProjectRecord:
        with self.db.read() as s:
            return repo.get_project(s, job.project_id)

    def train(self, job: JobRecord, ctx: JobContext) -> dict[str, Any]:
        spec = _typed(job, TrainJob)
        project = self._project(job)
        options = spec.options.apply(project.settings.training)
        learner, run = self.learner(project), f"job-{job.id}"
        done = _already_judged(learner, run)
        if done is not None:
            return done
        limit = (
            f"{options.steps} steps" if options.steps else f"a budget of {options.budget_s:.0f} s"
        )
        ctx.progress(0.0, f"training from scratch ({limit})")

        def log_plan(plan: Plan) -> None:
            ctx.log(f"plan: {plan.summary()}")
            for reason in plan.reasons:
                ctx.log(f"  - {reason}")

        try:
            callbacks = _callbacks(ctx, "train", self._curve(job))
            out = learner.train(options, callbacks, run, on_plan=log_plan)
        except TrainingInterrupted as err:
            raise JobCancelled(str(err)) from err
        return {
            "version": out.version,
            "promoted": out.promoted,
            "reasons": list(out.decision.reasons),
            "locked_val": out.val.to_dict(),
            "steps": out.steps,
            "seconds": out.seconds,
        }

    def finetune(self, job: JobRecord, ctx: JobContext) -> dict[str, Any]:
        spec = _typed(job, FinetuneJob)
        project = self._project(job)
        policy = spec.options.apply(project.settings.learning)
        learner, run = self.learner(project), f"job-{job.id}"
        done = _already_judged(learner, run)
        if done is not None:
            return done
        ctx.progress(0.0, f"fine-tuning on corrections ({spec.options.trigger})")
        try:
            out = learner.finetune(policy, _callbacks(ctx, "finetune", self._curve(job)), run)
        except TrainingInterrupted as err:
            raise JobCancelled(str(err)) from err
        return {
            "version": out.version,
            "parent": out.parent,
            "promoted": out.promoted,
            "reasons": list(out.decision.reasons),
            "trained_corrections": out.n_trained_corrections,
            "held_out_corrections": out.n_heldout_corrections,
            "seconds": out.total_seconds,
        }

    def evaluate(self, job: JobRecord, ctx: JobContext) -> dict[str, Any]:
        spec = _typed(job, EvaluateJob)
        learner = self.learner(self._project(job))
        split = spec.options.split
        if split is None:
            has_test = any(s.split == "test" for s in learner.data.reference())
            split = "test" if has_test else "val"
        ctx.progress(0.1, f"evaluating {spec.options.version or 'production'} on split {split}")
        name, summary = learner.evaluate(spec.options.version, split)
        return {"version": name, "split": split, "summary": summary.to_dict()}


def build_handlers(
    learning: LearningJobs, sync: DicomSync, imports: ReferenceImport, erasures: Erasures
) -> Mapping[str, Handler]:
    """Handlers keyed by job kind."""

    def dicomweb_sync(job: JobRecord, ctx: JobContext) -> dict[str, Any]:
        ctx.progress(0.0, "DICOMweb sync")
        return sync.run(job.project_id, log_line=ctx.log).to_dict()

    return {
        "train": learning.train,
        "finetune": learning.finetune,
        "evaluate": learning.evaluate,
        "dicomweb_sync": dicomweb_sync,
        "reference_import": imports.run,
        "erasure": erasures.run,
    }
