"""Accuracy on a shared dataset: train on ``train``, select on ``val``, Dice on ``test``.

Dice is the mean over test images of the per-image Dice (1 when both are empty),
overall and per group, as ``../shared/data/README.md`` defines it.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from medloop.bench.budgets import budget
from medloop.bench.loop import machine_description
from medloop.domain.labels import LabelSet
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
    quick: bool = False,
    steps: int | None = None,
    device: str | None = None,
    work_dir: Path | None = None,
) -> dict[str, Any]:
    """Train, evaluate on the locked ``test`` split, write JSON, print a table."""
    from medloop.ml.inference import Predictor

    bud = budget(quick)
    ds = load_dataset(data)
    test = ds.select(split="test")
    if not len(test):
        raise DatasetError(f"{data}: no 'test' split to report on")
    work = work_dir or Path(tempfile.mkdtemp(prefix="medloop-acc-"))
    settings = ProjectSettings(
        labels=LabelSet.from_names(["foreground"]).labels,
        training=TrainingOptions(
            channels=bud.channels,
            patch_size=bud.patch_size,
            steps=steps or bud.base_steps * (2 if not quick else 1),
            batch_size=bud.batch_size,
            lr=bud.lr,
            val_every=bud.val_every,
        ),
    )
    source = FolderTrainingData(data, settings.label_set.num_foreground)
    cache = PairCache(source)
    t0 = time.perf_counter()
    out = train_workspace(
        data, work / "registry", settings, device=device, max_val=bud.max_val_images, cache=cache
    )
    train_seconds = time.perf_counter() - t0
    store = FolderArtifactStore(work / "registry")
    pred = Predictor.from_bytes(
        store.get(out.version).manifest, store.read_file(out.version), device
    )
    t1 = time.perf_counter()
    samples = [s for s in source.reference() if s.split == "test"]
    summary, _ = evaluate_samples(pred, samples, cache)
    result = {
        "dataset": str(data),
        "machine": machine_description(device),
        "quick": quick,
        "steps": out.steps,
        "train_seconds": train_seconds,
        "eval_seconds": time.perf_counter() - t1,
        "val": out.val.to_dict(),
        "test": summary.to_dict(),
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2))
    table = Table("split", "images", "mean Dice", title=f"{data.name} — {result['machine']}")
    table.add_row("test", str(summary.n_images), f"{summary.mean_dice:.4f}")
    for g, v in summary.per_group.items():
        table.add_row(f"test / {g}", "", f"{v:.4f}")
    Console().print(table)
    return result
