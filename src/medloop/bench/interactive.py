"""Clicks to Dice: how much work a model leaves to the clinician.

On the ``test`` split a simulated clinician starts from the automatic prediction and
clicks, up to 20 times, at the centre of the largest error region (positive for a
missed region, negative for a false one), the model refining after each click from the
automatic label map and all the clicks so far, as the server's refine route does (on a
volume, a window around the new click is recomputed and pasted into the current labels;
on a 2D image, the window around all the clicks replaces the automatic labels there). Reported:
NoC@85 and NoC@90 (mean clicks to reach that Dice; 20 where never reached), Dice after
1, 3 and 5 clicks, seconds per click (p50, p99), and the automatic model's Dice (clicks
= 0) — for a model trained without clicks and one trained with them, within the same
budget, so the figures say whether one version should serve both modes. Or, given a
registry, for one click-guided version already trained there (no training).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.table import Table

from medloop.bench.machine import dataset_labels, machine_description
from medloop.domain.clicks import Guidance
from medloop.domain.ports import PairSample
from medloop.domain.settings import ProjectSettings, TrainingOptions
from medloop.errors import ConfigError, DatasetError
from medloop.services.evaluation import evaluate_samples, per_label_dice
from medloop.services.folder_data import FolderTrainingData
from medloop.services.pairs import PairCache
from medloop.services.workspace import train_workspace
from medloop.storage.folder_registry import FolderArtifactStore

if TYPE_CHECKING:
    from medloop.ml.inference import Predictor

__all__ = [
    "MAX_CLICKS",
    "ClickCurve",
    "click_curve",
    "run_interactive",
    "run_interactive_version",
]

MAX_CLICKS = 20


@dataclass(frozen=True)
class ClickCurve:
    """Per image, Dice after 0..MAX_CLICKS clicks ``(n, MAX_CLICKS + 1)``, and each click's seconds."""

    dice: np.ndarray
    seconds: list[float]

    def noc(self, target: float) -> float:
        """Mean clicks to reach ``target`` Dice (MAX_CLICKS where never reached)."""
        reached = self.dice >= target
        first = np.where(reached.any(1), reached.argmax(1), MAX_CLICKS)
        return float(first.mean())

    def never(self, target: float) -> float:
        """Share of the images that do not reach ``target`` Dice within MAX_CLICKS clicks."""
        return float(1.0 - (self.dice >= target).any(1).mean())

    def after(self, clicks: int) -> float:
        return float(self.dice[:, clicks].mean())

    def summary(self) -> dict[str, Any]:
        secs = np.array(self.seconds) if self.seconds else np.zeros(1)
        return {
            "images": int(self.dice.shape[0]),
            "dice_0": self.after(0),
            "dice_1": self.after(1),
            "dice_3": self.after(3),
            "dice_5": self.after(5),
            "noc85": self.noc(0.85),
            "noc90": self.noc(0.90),
            "never85": self.never(0.85),
            "never90": self.never(0.90),
            "seconds_per_click_p50": float(np.percentile(secs, 50)),
            "seconds_per_click_p99": float(np.percentile(secs, 99)),
        }


def click_curve(
    predictor: Predictor,
    samples: Sequence[PairSample],
    cache: PairCache,
    max_clicks: int = MAX_CLICKS,
) -> ClickCurve:
    """The simulated clinician (see the module doc) on every sample."""
    from medloop.ml.guidance import next_click
    from medloop.ml.interactive import RefineSession

    k = predictor.manifest.labels.num_foreground
    rows, seconds = [], []
    for sample in samples:
        pair = cache.pair(sample)
        labels = predictor.predict(pair.image).label_map
        session = RefineSession(predictor, pair.image, labels)
        dice = [per_label_dice(labels, pair.mask, k)]
        clicks: list[Any] = []
        for _ in range(max_clicks):
            click = next_click(labels, pair.mask, k)
            if click is None:  # nothing left to fix
                dice.append(dice[-1])
                continue
            clicks.append(click)
            t0 = time.perf_counter()
            if pair.image.is_volume:  # as the server does: the window around the new click
                block = session.refine_block(Guidance(tuple(clicks)), Guidance((click,)))
                labels = labels.copy()
                labels[block.window] = block.labels
            else:
                labels = session.refine(Guidance(tuple(clicks))).prediction.label_map
            seconds.append(time.perf_counter() - t0)
            dice.append(per_label_dice(labels, pair.mask, k))
        rows.append(dice)
    return ClickCurve(np.array(rows), seconds)


def _train(
    data: Path, work: Path, settings: ProjectSettings, cache: PairCache, device: str | None
) -> tuple[Predictor, int]:
    """The trained version's predictor and the steps its training made (the plan's
    ``steps`` is only a cap when the run has a time budget)."""
    from medloop.ml.inference import Predictor

    out = train_workspace(data, work, settings, device=device, cache=cache)
    store = FolderArtifactStore(work)
    predictor = Predictor.from_bytes(
        store.get(out.version).manifest, store.read_file(out.version), device
    )
    return predictor, out.steps


def _test_split(data: Path) -> tuple[list[PairSample], PairCache]:
    source = FolderTrainingData(data, dataset_labels(data).num_foreground)
    test = [s for s in source.reference() if s.split == "test"]
    if not test:
        raise DatasetError(f"{data}: no 'test' split to click through")
    return test, PairCache(source)


def _write(results: dict[str, Any], json_path: Path) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2))
    _print(results)


def run_interactive_version(
    data: Path,
    json_path: Path,
    registry: Path,
    version: str | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Click through ``test`` with a trained click-guided ``version`` of ``registry``
    (default: production) instead of training; its automatic answer is the 0-click row.

    Raises:
        ConfigError: the version was not trained for clicks, or its labels are not the
            dataset's.
    """
    from medloop.services.workspace import stored_version, version_predictor

    store, record = stored_version(registry, version)
    name, manifest = record.name, record.manifest
    if manifest.guidance is None:
        raise ConfigError(
            f"{name} was not trained for clicks: train one with `medloop train --interactive`"
        )
    k = dataset_labels(data).num_foreground
    if manifest.labels.num_foreground != k:
        raise ConfigError(f"{name} has {manifest.labels.num_foreground} label(s), {data} has {k}")
    test, cache = _test_split(data)
    # A 2D model on volumes (or the reverse) fails here, before its weights load.
    if cache.pair(test[0]).image.ndim != manifest.spatial_dims:
        raise ConfigError(f"{name} is a {manifest.spatial_dims}D model; {data} is not")
    predictor = version_predictor(store, record, device)
    results: dict[str, Any] = {
        "dataset": str(data),
        "machine": machine_description(device),
        "version": {"registry": str(registry), "name": name},
        "click-guided": {**click_curve(predictor, test, cache).summary(), "plan": manifest.plan},
    }
    _write(results, json_path)
    return results


def run_interactive(
    data: Path, json_path: Path, *, options: TrainingOptions, device: str | None = None
) -> dict[str, Any]:
    """Train an automatic and an interactive model within the budget; click through ``test``."""
    test, cache = _test_split(data)
    work = Path(tempfile.mkdtemp(prefix="medloop-interactive-"))
    labels = dataset_labels(data).labels
    results: dict[str, Any] = {
        "dataset": str(data),
        "machine": machine_description(device),
        "budget_s": options.budget_s,
    }
    console = Console(stderr=True)
    for name, interactive in (("automatic", False), ("click-guided", True)):
        settings = ProjectSettings(
            labels=labels, training=options.model_copy(update={"interactive": interactive})
        )
        t0 = time.perf_counter()
        predictor, steps = _train(data, work / name, settings, cache, device)
        train_s = time.perf_counter() - t0
        if interactive:
            curve = click_curve(predictor, test, cache)
            results[name] = {**curve.summary(), "train_seconds": train_s, "steps": steps}
        else:
            summary, _ = evaluate_samples(predictor, test, cache)
            results[name] = {"dice_0": summary.mean_dice, "train_seconds": train_s, "steps": steps}
        console.print(f"{name}: {results[name]}")
        results[name]["plan"] = predictor.manifest.plan  # what the planner chose for it
    _write(results, json_path)
    return results


def _print(results: dict[str, Any]) -> None:
    table = Table(
        "model",
        "Dice, 0 clicks",
        "1",
        "3",
        "5",
        "NoC@85",
        "NoC@90",
        "s/click p50",
        "p99",
        title=f"{Path(results['dataset']).name} — {results['machine']}",
    )
    guided = results["click-guided"]
    if "automatic" in results:
        dice = f"{results['automatic']['dice_0']:.3f}"
        table.add_row("automatic (brush fixes not counted)", dice, *["-"] * 7)
    taken = results.get("version")
    table.add_row(
        "click-guided" if taken is None else f"click-guided ({taken['name']})",
        *(f"{guided[k]:.3f}" for k in ("dice_0", "dice_1", "dice_3", "dice_5")),
        f"{guided['noc85']:.2f}",
        f"{guided['noc90']:.2f}",
        f"{1000 * guided['seconds_per_click_p50']:.0f} ms",
        f"{1000 * guided['seconds_per_click_p99']:.0f} ms",
    )
    Console().print(table)
