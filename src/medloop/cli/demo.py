"""``medloop demo``: the whole loop on the bundled CC0 sample, in about a minute and a half on a CPU.

1. plan and train version 1 on 32 fluorescence nuclei images (80 more validate it: half
   pick the checkpoint, half are locked away for the gate), within a time budget;
2. analyse four brightfield/H&E images it has never seen (another stain: it does badly);
3. a simulated clinician corrects eight other brightfield images (their reference masks);
4. fine-tune on the corrections (weighted) plus a replay of the reference data, gate;
5. analyse the four images again with the candidate and with production, and compare.
"""

from __future__ import annotations

import shutil
import time
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from medloop.cli._common import console, training_progress

if TYPE_CHECKING:
    from medloop.domain.settings import ProjectSettings
    from medloop.io import Sample
    from medloop.services.analysis import AnalysisResult
    from medloop.services.workspace import Workspace

__all__ = ["run_demo", "sample_dataset"]


def sample_dataset() -> Path:
    """The bundled sample's folder (a manifest with groups and splits)."""
    return Path(str(files("medloop") / "sample" / "nuclei"))


def _dice(pred_path: Path, mask_path: Path) -> float:
    from medloop.io import read_mask
    from medloop.services.evaluation import per_image_dice

    pred = read_mask(pred_path, num_foreground=1)
    ref = read_mask(mask_path, num_foreground=1)
    return per_image_dice(pred, ref)


FINETUNE_BUDGET_S = 33.0
"""Seconds the demo's fine-tune may train. Its 300 steps took 34 s (fast phase) to 42 s
(slow phase) on a 2-core AVX2 CPU in float32. With this budget a slower machine trains
fewer of them, and the demo (45 s for version 1, this, then about 8 s for the gate and the
analyses) still ends within 90 s."""


def _settings(budget_s: float) -> ProjectSettings:
    from medloop.domain.labels import LabelSet
    from medloop.domain.settings import LearningPolicy, ProjectSettings, TrainingOptions

    return ProjectSettings(
        labels=LabelSet.from_names(["nucleus"]).labels,
        # the project will also see H&E stains: keep colour
        training=TrainingOptions(budget_s=budget_s, color="rgb"),
        learning=LearningPolicy(budget_s=FINETUNE_BUDGET_S),
    )


def _analyse(
    unseen: list[Sample], registry: Path, out: Path, version: str | None, device: str | None
) -> tuple[list[AnalysisResult], list[float]]:
    from medloop.services.analysis import analyze_files

    results = analyze_files([s.image for s in unseen], registry, out, version, device)
    dice = [_dice(Path(r.label_map_path), s.mask) for r, s in zip(results, unseen, strict=True)]
    return results, dice


def _correct(workspace: Workspace, samples: list[Sample], version: str) -> None:
    for s in samples:
        workspace.corrections.add(
            s.image.read_bytes(),
            s.mask.read_bytes(),
            key=s.key,
            held_out_share=workspace.project.settings.learning.held_out_share,
            author="demo-clinician",
            corrects_version=version,
        )
    console.print(
        f"{len(workspace.corrections.records())} corrections stored in {workspace.corrections.root}"
    )


def run_demo(out: Path, budget_s: float = 45.0, device: str | None = None) -> None:
    """The loop on the sample; everything goes to ``out`` (registry and analyses)."""
    from medloop.io import load_dataset
    from medloop.services.workspace import Workspace, train_workspace

    started = time.perf_counter()
    data = sample_dataset()
    ds = load_dataset(data)
    registry = out / "registry"
    shutil.rmtree(registry, ignore_errors=True)
    console.rule("1. plan and train version 1 on fluorescence nuclei")
    with training_progress("train v1") as cb:
        base = train_workspace(
            data,
            registry,
            _settings(budget_s),
            group="fluorescence",
            device=device,
            callbacks=cb,
            on_plan=lambda plan: console.print(f"plan: {plan.summary()}"),
        )
    console.print(f"{base.version}: locked-validation Dice {base.val.mean_dice:.3f}, promoted")

    unseen = list(ds.select(group="brightfield_or_he", split="test").samples)
    console.rule("2. analyse brightfield/H&E images the model has never seen")
    before, dice_before = _analyse(unseen, registry, out / "analyses-before", None, device)
    for r, d in zip(before, dice_before, strict=True):
        console.print(
            f"{Path(r.source).name}: {r.measurements[0].components} nuclei found, "
            f"uncertainty {r.uncertainty:.3f}, Dice vs. reference {d:.3f}"
        )

    console.rule("3. a clinician corrects eight other brightfield images")
    workspace = Workspace.open(registry)
    _correct(
        workspace, list(ds.select(group="brightfield_or_he", split="train").samples), base.version
    )

    console.rule("4. fine-tune on the weighted corrections + replay, then gate")
    with training_progress("fine-tune") as cb:
        ft = workspace.learner(device=device).finetune(callbacks=cb)
    console.print(f"{ft.version} (parent {ft.parent}): {'promoted' if ft.promoted else 'rejected'}")
    for reason in ft.decision.reasons:
        console.print(f"  - {reason}", highlight=False)

    console.rule("5. analyse the unseen images again")
    after, dice_after = _analyse(unseen, registry, out / "analyses-after", None, device)
    _, dice_cand = _analyse(unseen, registry, out / "analyses-candidate", ft.version, device)
    table = Table(
        "image", f"Dice {base.version}", f"Dice {ft.version} (candidate)", "Dice production"
    )
    for s, b, c, a, ra in zip(unseen, dice_before, dice_cand, dice_after, after, strict=True):
        table.add_row(s.image.name, f"{b:.3f}", f"{c:.3f}", f"{a:.3f} ({ra.model_version})")
    console.print(table)
    versions = ", ".join(f"{r.name} {r.status.value}" for r in workspace.store.versions())
    console.print(f"production: {workspace.store.production()}; versions: {versions}")
    console.print(f"the demo took {time.perf_counter() - started:.0f} s; registry: {registry}")
    console.print(f"try: medloop models show {ft.version} --registry {registry}")
