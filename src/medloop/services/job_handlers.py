"""What the job worker runs: train, finetune, evaluate and DICOMweb sync jobs of a server project."""

from __future__ import annotations

import csv
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medloop.errors import ConfigError, DatasetError
from medloop.jobs import JobCancelled, JobContext, JobRecord
from medloop.services.server_projects import learning_policy, train_options
from medloop.storage import repositories as repo

if TYPE_CHECKING:
    from medloop.ml.trainer import TrainCallbacks
    from medloop.runtime import Runtime

__all__ = ["build_handlers", "materialize_reference"]

Handler = Callable[[JobRecord, JobContext], Mapping[str, Any] | None]


def materialize_reference(rt: Runtime, project_id: str) -> Path:
    """Write ``reference/manifest.csv`` listing the project's reference pairs by blob path."""
    with rt.session() as s:
        pairs = repo.list_reference_pairs(s, project_id)
        rows = []
        for p in pairs:
            img = repo.get_image(s, p.image_id, project_id)
            rows.append(
                {
                    "image": str(rt.blobs.open_verified(img.blob_key, img.sha256)),
                    "mask": str(rt.blobs.open_verified(p.mask_blob_key, p.mask_sha256)),
                    "split": p.split,
                    "group": "",
                    "name": img.filename,
                }
            )
    if not any(r["split"] == "train" for r in rows):
        raise DatasetError("the project has no reference pairs with split 'train': add some first")
    ref_dir = rt.project_dir(project_id) / "reference"
    ref_dir.mkdir(parents=True, exist_ok=True)
    tmp = ref_dir / f".manifest.{uuid.uuid4().hex}.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["image", "mask", "split", "group", "name"])
        w.writeheader()
        w.writerows(rows)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, ref_dir / "manifest.csv")
    return ref_dir


def _callbacks(ctx: JobContext, what: str) -> TrainCallbacks:
    from medloop.ml.trainer import TrainCallbacks

    def on_step(step: int, total: int, loss: float) -> None:
        every = max(1, total // 50)
        if step % every == 0 or step == total:
            ctx.progress(0.9 * step / total, f"{what}: step {step}/{total} loss {loss:.4f}")

    def on_validate(step: int, dice: float) -> None:
        ctx.log(f"{what}: step {step} validation Dice {dice:.4f}")

    return TrainCallbacks(on_step=on_step, on_validate=on_validate, should_stop=ctx.cancelled)


def build_handlers(rt: Runtime) -> dict[str, Handler]:
    """Handlers keyed by job kind, closed over the runtime."""

    def train(job: JobRecord, ctx: JobContext) -> dict[str, Any]:
        from medloop.services.training import train_base

        with rt.session() as s:
            project = repo.get_project(s, job.project_id)
        opts = dict(job.options)
        if "steps" in opts:
            opts["train_steps"] = opts.pop("steps")
        options = train_options(project, opts, rt.settings.device)
        ref_dir = materialize_reference(rt, job.project_id)
        ctx.progress(0.0, f"training from scratch on {ref_dir}")
        out = train_base(
            ref_dir,
            rt.project_dir(job.project_id) / "registry",
            options,
            _callbacks(ctx, "train"),
            replace_reference=True,
        )
        if ctx.cancelled():
            raise JobCancelled()
        return {
            "version": out.version,
            "promoted": out.promoted,
            "reasons": list(out.decision.reasons),
            "locked_val": out.val.to_dict(),
            "seconds": out.seconds,
        }

    def finetune(job: JobRecord, ctx: JobContext) -> dict[str, Any]:
        from medloop.domain.learning import AcceptanceRule
        from medloop.services.learning import Learner
        from medloop.services.server_data import DbCorrections

        with rt.session() as s:
            project = repo.get_project(s, job.project_id)
        learning = {
            **project.learning,
            **{
                k: v
                for k, v in job.options.items()
                if k in ("steps", "lr", "correction_weight", "replay_size")
            },
        }
        policy = learning_policy(learning)
        acc = learning.get("acceptance", {})
        rule = AcceptanceRule(**acc) if acc else AcceptanceRule()
        registry_root = rt.project_dir(job.project_id) / "registry"
        if not (registry_root / "project.json").exists():
            raise ConfigError("the project has no trained model yet: run a train job first")
        learner = Learner(
            registry_root, rt.settings.device, corrections=DbCorrections(rt, job.project_id)
        )
        ctx.progress(0.0, f"fine-tuning {learner.registry.production()} on corrections")
        out = learner.finetune(policy, rule, _callbacks(ctx, "finetune"))
        return {
            "version": out.version,
            "parent": out.parent,
            "promoted": out.promoted,
            "reasons": list(out.decision.reasons),
            "trained_corrections": out.n_trained_corrections,
            "held_out_corrections": out.n_heldout_corrections,
            "seconds": out.total_seconds,
        }

    def evaluate(job: JobRecord, ctx: JobContext) -> dict[str, Any]:
        from medloop.services.evaluate_cmd import evaluate_dataset

        ref_dir = materialize_reference(rt, job.project_id)
        split = job.options.get("split")
        version = job.options.get("version")
        ctx.progress(0.1, f"evaluating {version or 'production'} on split {split or 'test'}")
        try:
            name, summary = evaluate_dataset(
                rt.project_dir(job.project_id) / "registry",
                ref_dir,
                split,
                version,
                rt.settings.device,
            )
        except DatasetError:
            name, summary = evaluate_dataset(
                rt.project_dir(job.project_id) / "registry",
                ref_dir,
                "val",
                version,
                rt.settings.device,
            )
        return {"version": name, "summary": summary.to_dict()}

    def dicomweb_sync(job: JobRecord, ctx: JobContext) -> dict[str, Any]:
        from medloop.dicom.sync import sync_project

        ctx.progress(0.0, "DICOMweb sync")
        report = sync_project(rt, job.project_id, log_line=ctx.log)
        return report.to_dict()

    return {
        "train": train,
        "finetune": finetune,
        "evaluate": evaluate,
        "dicomweb_sync": dicomweb_sync,
    }
