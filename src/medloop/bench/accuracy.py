"""Accuracy on a shared dataset: plan and train within a budget, select on ``val``, Dice on ``test``.

Dice is the mean over test images of the per-image Dice (1 when both are empty), overall
and per group, as ``../shared/data/README.md`` defines it; with several labels, an
image's Dice is the mean over its labels (per-label figures are reported beside it).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from medloop.bench.machine import dataset_labels, machine_description
from medloop.domain.plan import Plan
from medloop.domain.settings import ProjectSettings, TrainingOptions
from medloop.errors import DatasetError
from medloop.io import load_dataset
from medloop.services.evaluation import evaluate_samples
from medloop.services.folder_data import FolderTrainingData
from medloop.services.pairs import PairCache
from medloop.services.workspace import train_workspace
from medloop.storage.folder_registry import FolderArtifactStore

__all__ = ["run_accuracy"]


def run_accuracy(
    data: Path,
    json_path: Path,
    *,
    options: TrainingOptions,
    device: str | None = None,
    work_dir: Path | None = None,
) -> dict[str, Any]:
    """Plan and train within ``options.budget_s``, evaluate on ``test``, write JSON, print."""
    from medloop.ml.inference import Predictor

    if "test" not in load_dataset(data).splits:
        raise DatasetError(f"{data}: no 'test' split to report on")
    work = work_dir or Path(tempfile.mkdtemp(prefix="medloop-acc-"))
    settings = ProjectSettings(labels=dataset_labels(data).labels, training=options)
    source = FolderTrainingData(data, settings.label_set.num_foreground)
    cache = PairCache(source)
    console = Console(stderr=True)
    plans: list[Plan] = []

    def show(plan: Plan) -> None:
        plans.append(plan)
        console.print(f"plan: {plan.summary()}", highlight=False)
        for reason in plan.reasons:
            console.print(f"  - {reason}", highlight=False)

    t0 = time.perf_counter()
    out = train_workspace(
        data, work / "registry", settings, device=device, cache=cache, on_plan=show
    )
    train_seconds = time.perf_counter() - t0
    store = FolderArtifactStore(work / "registry")
    record = store.get(out.version)
    pred = Predictor.from_bytes(record.manifest, store.read_file(out.version), device)
    t1 = time.perf_counter()
    samples = [s for s in source.reference() if s.split == "test"]
    summary, _ = evaluate_samples(pred, samples, cache, hd95=True)
    eval_seconds = time.perf_counter() - t1
    flips = record.manifest.test_time_flips
    without_flips = None
    if flips:  # what the flips the selection set chose did on test, for the record
        plain = replace(record.manifest, test_time_flips=())
        unflipped = Predictor.from_bytes(plain, store.read_file(out.version), device)
        without_flips = evaluate_samples(unflipped, samples, cache)[0].mean_dice
    result = {
        "dataset": str(data),
        "machine": machine_description(device),
        "budget_s": options.budget_s,
        "plan": record.manifest.plan,
        "keep_largest": list(record.manifest.keep_largest),
        "min_size": [list(p) for p in record.manifest.min_size],
        "test_time_flips": list(flips),
        "test_mean_dice_without_flips": without_flips,
        "steps": out.steps,
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "val": out.val.to_dict(),
        "test": summary.to_dict(),
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2))
    table = Table("split", "images", "mean Dice", title=f"{data.name} — {result['machine']}")
    table.add_row("test", str(summary.n_images), f"{summary.mean_dice:.4f}")
    for label, d in zip(settings.label_set.labels, summary.dice, strict=True):
        table.add_row(f"test / label {label.name}", "", f"{d:.4f}")
    for g, v in summary.per_group.items():
        table.add_row(f"test / {g}", "", f"{v:.4f}")
    if without_flips is not None:
        table.add_row("test without test-time flips", "", f"{without_flips:.4f}")
    Console().print(table)
    return result
