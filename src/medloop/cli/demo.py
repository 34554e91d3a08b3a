"""``medloop demo``: the whole loop on the bundled CC0 sample, in a minute or two on a CPU.

1. train version 1 on 24 fluorescence nuclei images (select on 4, 4 locked for the gate);
2. analyse two brightfield/H&E images it has never seen (another stain: it does badly);
3. a simulated clinician corrects six other brightfield images (their reference masks);
4. fine-tune on the corrections (weight 8) plus a replay of the reference data, gate;
5. analyse the two images again with the candidate and with production, and compare.
"""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

from rich.table import Table

from medloop.cli._common import console, training_progress

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


def run_demo(out: Path, steps: int = 300, device: str | None = None) -> None:
    from medloop.domain.labels import LabelSet
    from medloop.domain.settings import LearningPolicy, ProjectSettings, TrainingOptions
    from medloop.io import load_dataset
    from medloop.services.analysis import analyze_files
    from medloop.services.workspace import Workspace, train_workspace

    data = sample_dataset()
    ds = load_dataset(data)
    registry_root = out / "registry"
    shutil.rmtree(registry_root, ignore_errors=True)
    # A small reference set: a smaller weight keeps the corrections from swamping it.
    policy = LearningPolicy(
        correction_weight=4.0, replay_size=24, steps=max(20, steps // 2), lr=3e-4
    )
    settings = ProjectSettings(
        labels=LabelSet.from_names(["nucleus"]).labels,
        learning=policy,
        training=TrainingOptions(
            channels=(16, 32, 64, 128),
            patch_size=128,
            steps=steps,
            lr=2e-3,
            val_every=max(1, steps // 3),
            color="rgb",  # the project will also see H&E stains: keep colour
        ),
    )
    console.rule("1. train version 1 on fluorescence nuclei")
    with training_progress("train v1") as cb:
        base = train_workspace(
            data, registry_root, settings, group="fluorescence", device=device, callbacks=cb
        )
    console.print(
        f"{base.version}: validation Dice {base.val.mean_dice:.3f}, promoted: {base.promoted}"
    )

    unseen = ds.select(group="brightfield_or_he", split="test").samples
    console.rule("2. analyse brightfield/H&E images the model has never seen")
    before = analyze_files(
        [s.image for s in unseen], registry_root, out / "analyses-before", device=device
    )
    dice_before = [
        _dice(Path(r.label_map_path), s.mask) for r, s in zip(before, unseen, strict=True)
    ]
    for r, d in zip(before, dice_before, strict=True):
        console.print(
            f"{Path(r.source).name}: {r.measurements[0].components} nuclei found, "
            f"uncertainty {r.uncertainty:.3f}, Dice vs. reference {d:.3f}"
        )

    console.rule("3. a clinician corrects six other brightfield images")
    workspace = Workspace.open(registry_root)
    for s in ds.select(group="brightfield_or_he", split="train").samples:
        workspace.corrections.add(
            s.image.read_bytes(),
            s.mask.read_bytes(),
            key=s.key,
            held_out_share=policy.held_out_share,
            author="demo-clinician",
            corrects_version=base.version,
        )
    n_corrections = len(workspace.corrections.records())
    console.print(f"{n_corrections} corrections stored in {workspace.corrections.root}")

    console.rule("4. fine-tune on the weighted corrections + replay, then gate")
    with training_progress("fine-tune") as cb:
        ft = workspace.learner(device=device).finetune(callbacks=cb)
    console.print(f"{ft.version} (parent {ft.parent}): {'promoted' if ft.promoted else 'rejected'}")
    for reason in ft.decision.reasons:
        console.print(f"  - {reason}", highlight=False)

    console.rule("5. analyse the unseen images again")
    after = analyze_files(
        [s.image for s in unseen], registry_root, out / "analyses-after", device=device
    )
    cand = analyze_files(
        [s.image for s in unseen],
        registry_root,
        out / "analyses-candidate",
        version=ft.version,
        device=device,
    )
    dice_after = [_dice(Path(r.label_map_path), s.mask) for r, s in zip(after, unseen, strict=True)]
    dice_cand = [_dice(Path(r.label_map_path), s.mask) for r, s in zip(cand, unseen, strict=True)]
    table = Table(
        "image", f"Dice {base.version}", f"Dice {ft.version} (candidate)", "Dice production"
    )
    for s, b, c, a, ra in zip(unseen, dice_before, dice_cand, dice_after, after, strict=True):
        table.add_row(s.image.name, f"{b:.3f}", f"{c:.3f}", f"{a:.3f} ({ra.model_version})")
    console.print(table)
    versions = ", ".join(f"{r.name} {r.status.value}" for r in workspace.store.versions())
    console.print(f"production: {workspace.store.production()}; versions: {versions}")
    console.print(f"registry: {registry_root}")
    console.print(
        f"analyses: {out / 'analyses-before'}, {out / 'analyses-candidate'}, {out / 'analyses-after'}"
    )
    console.print(f"try: medloop models list --registry {registry_root}")
