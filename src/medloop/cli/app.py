"""``medloop``: train, analyze, finetune, evaluate, models, demo, bench."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from medloop.cli._common import console, fail, run_guarded, training_progress
from medloop.cli.bench import bench_app
from medloop.cli.export import export
from medloop.cli.models import models_app
from medloop.cli.remote import remote_app
from medloop.cli.server import import_data, secrets_app, serve
from medloop.cli.users import users_app
from medloop.cli.worker import worker

if TYPE_CHECKING:
    from medloop.domain.plan import Plan
    from medloop.domain.settings import ProjectSettings

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
app.add_typer(secrets_app, name="secrets")
app.add_typer(remote_app, name="remote")
app.command("serve")(serve)
app.command("worker")(worker)
app.command("import")(import_data)
app.command("export")(export)

RegistryOpt = Annotated[Path, typer.Option("--registry", "-r", help="Model registry folder.")]
DeviceOpt = Annotated[str | None, typer.Option(help="cpu, cuda or auto (default).")]


def _ints(text: str | None, option: str, example: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(c) for c in text.split(","))
    except ValueError:
        fail(f"{option} must be comma-separated integers like {example}, got {text!r}")


def _floats(text: str | None, option: str, example: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(c) for c in text.split(","))
    except ValueError:
        fail(f"{option} must be comma-separated numbers like {example}, got {text!r}")


def _given(**values: object) -> dict[str, object]:
    """The options the user set (``None``: leave the project's or the planner's value)."""
    return {k: v for k, v in values.items() if v is not None}


def _print_plan(plan: Plan) -> None:
    console.print(f"plan: {plan.summary()}", highlight=False)
    for reason in plan.reasons:
        console.print(f"  - {reason}", highlight=False)


@app.command()
def train(
    data: Annotated[
        Path, typer.Argument(help="Dataset: images/ + masks/ folders or manifest.csv.")
    ],
    registry: RegistryOpt,
    labels: Annotated[
        str, typer.Option(help="Comma-separated label names for values 1..K.")
    ] = "foreground",
    budget: Annotated[
        str | None,
        typer.Option(help="Training time: 5m, 90s, 1h, or quick / standard / long."),
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Same as --budget quick.")] = False,
    steps: Annotated[int | None, typer.Option(help="Fixed steps instead of the budget's.")] = None,
    patch_size: Annotated[str | None, typer.Option(help="Patch per axis: 128 or 40,56,40.")] = None,
    spacing: Annotated[str | None, typer.Option(help="Target mm per voxel: 1,1,1.")] = None,
    scale: Annotated[float | None, typer.Option(help="Resampling factor (no spacing).")] = None,
    channels: Annotated[str | None, typer.Option(help="U-Net widths: 16,32,64,128.")] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    lr: Annotated[float | None, typer.Option()] = None,
    val_every: Annotated[int | None, typer.Option()] = None,
    flip_axes: Annotated[
        str | None, typer.Option(help="Axes training may flip: 0,1 or 1 or none.")
    ] = None,
    group: Annotated[str | None, typer.Option(help="Train only on this manifest group.")] = None,
    color: Annotated[str | None, typer.Option(help="auto, gray or rgb.")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    interactive: Annotated[
        bool,
        typer.Option(
            "--interactive",
            help="Train the click-guided network (serves automatic answers and clicks).",
        ),
    ] = False,
    weight: Annotated[float | None, typer.Option(help="Correction weight w.")] = None,
    replay: Annotated[int | None, typer.Option(help="Replay sample size.")] = None,
    finetune_steps: Annotated[int | None, typer.Option(help="Fine-tune steps.")] = None,
    held_out_share: Annotated[float | None, typer.Option(help="Corrections held out.")] = None,
    margin: Annotated[float | None, typer.Option(help="Gate: non-inferiority margin.")] = None,
    confidence: Annotated[float | None, typer.Option(help="Gate: one-sided confidence.")] = None,
    device: DeviceOpt = None,
) -> None:
    """Plan from the data and a time budget, train (select on half of `val`), gate.

    The first version is promoted. The learning policy and acceptance rule given here
    become the project's defaults for later fine-tunes; anything left out is the
    default or, for the training configuration, the plan's.
    """
    if not data.exists():
        fail(f"dataset {data} does not exist")
    settings = _train_settings(
        labels,
        training=dict(
            budget=budget,
            quick=quick,
            steps=steps,
            patch_size=patch_size,
            spacing=spacing,
            scale=scale,
            channels=channels,
            batch_size=batch_size,
            lr=lr,
            val_every=val_every,
            flip_axes=flip_axes,
            color=color,
            seed=seed,
            interactive=interactive,
        ),
        learning=_given(
            correction_weight=weight,
            replay_size=replay,
            steps=finetune_steps,
            held_out_share=held_out_share,
        ),
        acceptance=_given(margin=margin, confidence=confidence),
    )
    _run_training(data, registry, settings, group, device)


def _train_settings(
    labels: str,
    training: dict[str, Any],
    learning: dict[str, object],
    acceptance: dict[str, object],
) -> ProjectSettings:
    """Project settings from ``medloop train``'s options (left out: the default or the plan)."""
    from medloop.domain.labels import LabelSet
    from medloop.domain.settings import ProjectSettings, parse_budget

    names = [s.strip() for s in labels.split(",") if s.strip()]
    budget_text = "quick" if training["quick"] else training["budget"]
    options = _given(
        budget_s=None if budget_text is None else run_guarded(lambda: parse_budget(budget_text)),
        steps=training["steps"],
        patch_size=_ints(training["patch_size"], "--patch-size", "128 or 40,56,40"),
        spacing=_floats(training["spacing"], "--spacing", "1,1,1"),
        scale=training["scale"],
        channels=_ints(training["channels"], "--channels", "16,32,64,128,256"),
        batch_size=training["batch_size"],
        lr=training["lr"],
        val_every=training["val_every"],
        flip_axes=(
            ()
            if (training["flip_axes"] or "").strip().lower() == "none"
            else _ints(training["flip_axes"], "--flip-axes", "0,1 or none")
        ),
        color=training["color"],
        seed=training["seed"],
        interactive=training["interactive"] or None,
    )
    return run_guarded(
        lambda: ProjectSettings.parse(
            {
                "labels": [lab.to_dict() for lab in LabelSet.from_names(names).labels],
                "training": options,
                "learning": learning,
                "acceptance": acceptance,
            }
        )
    )


def _run_training(
    data: Path, registry: Path, settings: ProjectSettings, group: str | None, device: str | None
) -> None:
    from medloop.services.workspace import train_workspace

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
                on_plan=_print_plan,
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
    budget: Annotated[
        str | None,
        typer.Option(help="Time budget, e.g. 2m: the fine-tune ends by then or after its steps."),
    ] = None,
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
    from medloop.domain.settings import Strategy, parse_budget
    from medloop.services.workspace import Workspace, add_corrections

    def go() -> None:
        workspace = Workspace.open(registry)
        policy = FinetuneOptions(
            correction_weight=weight,
            replay_size=replay,
            steps=steps,
            budget_s=None if budget is None else parse_budget(budget),
            lr=lr,
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
    budget: Annotated[str, typer.Option(help="Training budget of version 1.")] = "45s",
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
    from medloop.domain.settings import parse_budget

    run_guarded(lambda: run_demo(out, parse_budget(budget), device))


def main() -> None:
    app()
