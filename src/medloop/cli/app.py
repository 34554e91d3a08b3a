"""``medloop``: train, analyze, finetune, evaluate, models, demo, bench."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from medloop.cli._common import console, fail, run_guarded, training_progress
from medloop.cli.bench import bench_app
from medloop.cli.export import export
from medloop.cli.models import models_app
from medloop.cli.remote import remote_app
from medloop.cli.server import import_data, serve, users_app

app = typer.Typer(
    name="medloop",
    help="Medical image segmentation that learns from clinicians' corrections.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(models_app, name="models")
app.add_typer(bench_app, name="bench")
app.add_typer(users_app, name="users")
app.add_typer(remote_app, name="remote")
app.command("serve")(serve)
app.command("import")(import_data)
app.command("export")(export)

RegistryOpt = Annotated[Path, typer.Option("--registry", "-r", help="Model registry folder.")]
DeviceOpt = Annotated[str | None, typer.Option(help="cpu, cuda or auto (default).")]


def _parse_channels(text: str) -> tuple[int, ...]:
    try:
        chans = tuple(int(c) for c in text.split(","))
    except ValueError:
        fail(f"--channels must be comma-separated integers like 16,32,64,128,256, got {text!r}")
    if len(chans) < 2 or min(chans) < 1:
        fail(f"--channels needs at least two positive widths, got {text!r}")
    return chans


@app.command()
def train(
    data: Annotated[
        Path, typer.Argument(help="Dataset: images/ + masks/ folders or manifest.csv.")
    ],
    registry: RegistryOpt,
    labels: Annotated[
        str, typer.Option(help="Comma-separated label names for values 1..K.")
    ] = "foreground",
    steps: Annotated[int, typer.Option(min=1)] = 2000,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    patch_size: Annotated[int, typer.Option(min=16)] = 256,
    channels: Annotated[str, typer.Option(help="U-Net widths per level.")] = "16,32,64,128,256",
    lr: Annotated[float, typer.Option(min=0.0)] = 1e-3,
    val_every: Annotated[int, typer.Option(min=0)] = 200,
    group: Annotated[str | None, typer.Option(help="Train only on this manifest group.")] = None,
    color: Annotated[str, typer.Option(help="auto, gray or rgb.")] = "auto",
    seed: int = 0,
    weight: Annotated[float, typer.Option(help="Project default correction weight w.")] = 16.0,
    replay: Annotated[int, typer.Option(help="Project default replay sample size.")] = 256,
    finetune_steps: Annotated[int, typer.Option(help="Project default fine-tune steps.")] = 300,
    held_out_share: Annotated[
        float, typer.Option(help="Share of corrections held out for the gate.")
    ] = 0.2,
    max_dice_drop: Annotated[
        float, typer.Option(help="Gate: largest allowed per-class Dice drop on the locked set.")
    ] = 0.01,
    min_heldout_gain: Annotated[
        float, typer.Option(help="Gate: least mean-Dice change on held-out corrections.")
    ] = 0.0,
    device: DeviceOpt = None,
) -> None:
    """Train a model version from scratch (select on half of `val`, gate on the other half).

    The first version is promoted. The learning policy and acceptance rule given here
    become the project's defaults for later fine-tunes.
    """
    from medloop.domain.labels import LabelSet
    from medloop.domain.settings import (
        AcceptanceRule,
        LearningPolicy,
        ProjectSettings,
        TrainingOptions,
    )
    from medloop.services.workspace import train_workspace

    if not data.exists():
        fail(f"dataset {data} does not exist")
    names = [s.strip() for s in labels.split(",") if s.strip()]
    settings = run_guarded(
        lambda: ProjectSettings(
            labels=LabelSet.from_names(names).labels,
            learning=LearningPolicy(
                correction_weight=weight,
                replay_size=replay,
                steps=finetune_steps,
                held_out_share=held_out_share,
            ),
            acceptance=AcceptanceRule(
                max_class_dice_drop=max_dice_drop, min_heldout_gain=min_heldout_gain
            ),
            training=TrainingOptions(
                channels=_parse_channels(channels),
                patch_size=patch_size,
                steps=steps,
                batch_size=batch_size,
                lr=lr,
                val_every=val_every,
                color=color,  # type: ignore[arg-type]  # validated by pydantic
                seed=seed,
            ),
        )
    )
    with training_progress("train") as cb:
        out = run_guarded(
            lambda: train_workspace(
                data,
                registry,
                settings,
                options=settings.training,
                group=group,
                device=device,
                callbacks=cb,
            )
        )
    verdict = "promoted to production" if out.promoted else "rejected"
    console.print(
        f"{out.version}: {verdict}; validation Dice {out.val.mean_dice:.4f} "
        f"({out.val.n_images} images), {out.steps} steps in {out.seconds:.0f} s"
    )
    for reason in out.decision.reasons:
        console.print(f"  - {reason}", highlight=False)


@app.command()
def analyze(
    images: Annotated[
        list[Path], typer.Argument(help="Image files (PNG, JPEG, TIFF, BMP, GIF, DICOM).")
    ],
    registry: RegistryOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    version: Annotated[
        str | None, typer.Option(help="Model version (default: production).")
    ] = None,
    device: DeviceOpt = None,
) -> None:
    """Analyse images: label map, overlay, measurements and uncertainty per image."""
    from medloop.services.analysis import analyze_files

    for p in images:
        if not p.is_file():
            fail(f"image {p} does not exist")
    results = run_guarded(lambda: analyze_files(images, registry, out, version, device))
    table = Table("image", "version", "uncertainty", "class", "area px", "area mm²", "components")
    for r in results:
        for m in r.measurements:
            mm2 = "-" if m.area_mm2 is None else f"{m.area_mm2:.2f}"
            table.add_row(
                Path(r.source).name,
                r.model_version,
                f"{r.uncertainty:.3f}",
                m.name,
                str(m.area_px),
                mm2,
                str(m.components),
            )
    console.print(table)
    console.print(f"wrote {len(results)} results to {out}")


@app.command()
def finetune(
    registry: RegistryOpt,
    corrections: Annotated[
        Path | None, typer.Option(help="Dataset of corrected pairs to add before fine-tuning.")
    ] = None,
    weight: Annotated[
        float | None, typer.Option(help="Correction weight w (project default).")
    ] = None,
    replay: Annotated[
        int | None, typer.Option(help="Replay sample size (project default).")
    ] = None,
    steps: Annotated[int | None, typer.Option(min=1)] = None,
    lr: Annotated[float | None, typer.Option(min=0.0)] = None,
    strategy: Annotated[
        str | None,
        typer.Option(help="weighted-replay (default), corrections-only, all-equal, retrain."),
    ] = None,
    author: str = "cli",
    device: DeviceOpt = None,
) -> None:
    """Add corrections, fine-tune production on all corrections so far, and gate the candidate."""
    from medloop.domain.jobs import FinetuneOptions
    from medloop.domain.settings import Strategy
    from medloop.services.workspace import Workspace, add_corrections

    def go() -> None:
        workspace = Workspace.open(registry)
        policy = FinetuneOptions(
            correction_weight=weight, replay_size=replay, steps=steps, lr=lr
        ).apply(workspace.project.settings.learning)
        if strategy is not None:
            try:
                policy = policy.model_copy(update={"strategy": Strategy(strategy)})
            except ValueError:
                choices = ", ".join(s.value for s in Strategy)
                fail(f"--strategy must be one of {choices}, got {strategy!r}")
        if corrections is not None:
            added = add_corrections(registry, corrections, author=author)
            console.print(
                f"stored {len(added)} corrections ({sum(r.held_out for r in added)} held out)"
            )
        with training_progress("finetune") as cb:
            out = workspace.learner(device=device).finetune(policy, callbacks=cb)
        verdict = "promoted to production" if out.promoted else "rejected"
        console.print(
            f"{out.version} (from {out.parent}): {verdict}; trained on {out.n_trained_corrections} "
            f"corrections, {out.n_heldout_corrections} held out; {out.seconds:.1f} s training, "
            f"{out.total_seconds:.1f} s in all"
        )
        for reason in out.decision.reasons:
            console.print(f"  - {reason}", highlight=False)

    run_guarded(go)


@app.command()
def evaluate(
    registry: RegistryOpt,
    data: Annotated[Path, typer.Option(help="Dataset to score on.")],
    split: Annotated[
        str | None, typer.Option(help="Split to use (default: test if present, else all).")
    ] = None,
    version: Annotated[
        str | None, typer.Option(help="Model version (default: production).")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the summary here.")] = None,
    device: DeviceOpt = None,
) -> None:
    """Score a version on a dataset: Dice, IoU and HD95 per class, Dice per group."""
    from medloop.services.workspace import evaluate_dataset

    name, summary = run_guarded(lambda: evaluate_dataset(registry, data, split, version, device))
    table = Table("class", "Dice", "IoU", "HD95 px")
    for c, (d, i, h) in enumerate(zip(summary.dice, summary.iou, summary.hd95, strict=True)):
        table.add_row(str(c + 1), f"{d:.4f}", f"{i:.4f}", f"{h:.2f}")
    console.print(table)
    for g, v in summary.per_group.items():
        console.print(f"group {g}: Dice {v:.4f}")
    console.print(f"{name}: mean Dice {summary.mean_dice:.4f} over {summary.n_images} images")
    if json_out is not None:
        json_out.write_text(json.dumps({"version": name, **summary.to_dict()}, indent=2))


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option(help="Where the demo writes its registry and results.")
    ] = Path("demo-output"),
    steps: Annotated[int, typer.Option(min=1)] = 300,
    device: DeviceOpt = None,
    serve: Annotated[
        bool, typer.Option("--serve", help="Start a server with a demo project instead.")
    ] = False,
    port: Annotated[int, typer.Option(help="Port for --serve.")] = 8000,
) -> None:
    """Train on the bundled sample, analyse, simulate a correction, fine-tune, gate.

    With ``--serve``: start a server on 127.0.0.1 with a demo project built from the
    sample (version 1 trains in the background) and print the URL and an admin token.
    """
    if serve:
        from medloop.cli.demo_server import serve_demo

        run_guarded(lambda: serve_demo(out / "server", "127.0.0.1", port, device))
        return
    from medloop.cli.demo import run_demo

    run_guarded(lambda: run_demo(out, steps, device))


def main() -> None:
    app()
