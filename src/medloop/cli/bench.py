"""``medloop bench accuracy|loop``: the benchmarks in ``src/medloop/bench``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from medloop.cli._common import console, fail, run_guarded

if TYPE_CHECKING:
    from medloop.bench.loop import LoopConfig

bench_app = typer.Typer(help="Benchmarks that print tables and write JSON.", no_args_is_help=True)


@bench_app.command("accuracy")
def accuracy(
    data: Annotated[Path, typer.Option(help="Dataset with train/val/test splits.")],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results.")],
    budget: Annotated[
        str, typer.Option(help="Training time: 5m, 90s, 1h, or quick / standard / long.")
    ] = "standard",
    quick: Annotated[bool, typer.Option("--quick", help="Same as --budget quick.")] = False,
    steps: Annotated[int | None, typer.Option(help="Fixed steps instead of the budget's.")] = None,
    device: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Plan and train within a budget on `train`, select on `val`, report Dice on `test`."""
    from medloop.bench.accuracy import run_accuracy
    from medloop.domain.settings import TrainingOptions, parse_budget

    options = run_guarded(
        lambda: TrainingOptions(budget_s=parse_budget("quick" if quick else budget), steps=steps)
    )
    result = run_guarded(lambda: run_accuracy(data, json_out, options=options, device=device))
    console.print(f"test Dice {result['test']['mean_dice']:.4f}; wrote {json_out}")


@bench_app.command("interactive")
def interactive(
    data: Annotated[Path, typer.Option(help="Dataset with a test split.")],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results.")],
    budget: Annotated[
        str | None, typer.Option(help="Training time of each model [default: standard].")
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Same as --budget quick.")] = False,
    steps: Annotated[int | None, typer.Option(help="Fixed steps instead of the budget's.")] = None,
    registry: Annotated[
        Path | None,
        typer.Option(help="Take a click-guided version from this registry instead of training."),
    ] = None,
    version: Annotated[
        str | None, typer.Option(help="With --registry: the version (default: production).")
    ] = None,
    device: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Clicks to Dice on `test`: NoC@85/90, Dice after 1/3/5 clicks, seconds per click.

    Trains an automatic and a click-guided model within the budget, or takes a trained
    click-guided version from --registry.
    """
    from medloop.bench.interactive import run_interactive, run_interactive_version
    from medloop.domain.settings import TrainingOptions, parse_budget

    if registry is not None:
        if budget is not None or quick or steps is not None:
            fail("--registry takes a trained version: leave out --budget, --quick and --steps")
        taken = run_guarded(
            lambda: run_interactive_version(data, json_out, registry, version, device)
        )
        console.print(f"clicked with {taken['version']['name']} of {registry}")
    elif version is not None:
        fail("--version needs --registry")
    else:
        text = "quick" if quick else budget or "standard"
        options = run_guarded(lambda: TrainingOptions(budget_s=parse_budget(text), steps=steps))
        run_guarded(lambda: run_interactive(data, json_out, options=options, device=device))
    console.print(f"wrote {json_out}")


@bench_app.command("latency")
def latency(
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results.")],
    clicks: Annotated[int, typer.Option(min=1, help="Clicks timed per case.")] = 10,
    device: Annotated[str | None, typer.Option()] = None,
    server: Annotated[
        bool, typer.Option(help="Also time the server's refine service on the volumes.")
    ] = True,
) -> None:
    """Seconds per click of the interactive model: 2D 512², an MR volume, a CT-sized volume;
    and of the server's refine on the two volumes."""
    from medloop.bench.latency import run_latency

    run_guarded(lambda: run_latency(json_out, clicks, device, server))
    console.print(f"wrote {json_out}")


def _loop_config(
    data: Path,
    source_group: str,
    target_group: str,
    rounds: int,
    per_round: int,
    quick: bool,
    strategies: str,
    device: str | None,
    base_budget: str | None,
    base_size: int | None,
    overrides: dict[str, Any],
    interactive: bool = False,
) -> LoopConfig:
    from medloop.bench.loop import LoopConfig
    from medloop.domain.settings import parse_budget

    return LoopConfig(
        data=data,
        source_group=source_group,
        target_group=target_group,
        rounds=rounds,
        per_round=per_round,
        quick=quick,
        strategies=tuple(strategies.split(",")),
        device=device,
        base_budget_s=None if base_budget is None else parse_budget(base_budget),
        base_size=base_size,
        interactive=interactive,
        **overrides,
    )


DataOpt = Annotated[Path, typer.Option(help="Dataset with groups and splits.")]
SourceOpt = Annotated[str, typer.Option(help="Group the base model is trained on.")]
TargetOpt = Annotated[str, typer.Option(help="Group the corrections come from.")]
JsonOpt = Annotated[Path, typer.Option("--json", help="Where to write the results.")]
QuickOpt = Annotated[bool, typer.Option(help="Small budgets for a CPU.")]
BaseBudgetOpt = Annotated[
    str | None, typer.Option(help="Base model's training budget (5m, quick, ...).")
]
BaseSizeOpt = Annotated[
    int | None, typer.Option(help="Base trained on only this many train pairs (one group).")
]


@bench_app.command("loop")
def loop(
    data: DataOpt,
    source_group: SourceOpt,
    target_group: TargetOpt,
    json_out: JsonOpt,
    rounds: Annotated[int, typer.Option(min=1)] = 2,
    per_round: Annotated[int, typer.Option(min=1)] = 5,
    quick: QuickOpt = False,
    strategies: Annotated[str, typer.Option(help="Comma-separated strategies to run.")] = (
        "weighted-replay,corrections-only,all-equal,retrain"
    ),
    base_budget: BaseBudgetOpt = None,
    base_size: BaseSizeOpt = None,
    correction_weight: Annotated[
        float | None, typer.Option(help="Override the budget's w.")
    ] = None,
    replay_size: Annotated[int | None, typer.Option(help="Override the replay size.")] = None,
    finetune_steps: Annotated[
        int | None, typer.Option(help="Override the fine-tune steps.")
    ] = None,
    interactive: Annotated[
        bool, typer.Option(help="Click-guided model; clicks per image after each round.")
    ] = False,
    device: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Simulated clinician: base on SOURCE, corrections from TARGET, per strategy, per round."""
    from medloop.bench.loop import run_loop

    cfg = run_guarded(
        lambda: _loop_config(
            data,
            source_group,
            target_group,
            rounds,
            per_round,
            quick,
            strategies,
            device,
            base_budget,
            base_size,
            {
                "correction_weight": correction_weight,
                "replay_size": replay_size,
                "finetune_steps": finetune_steps,
            },
            interactive,
        )
    )
    run_guarded(lambda: run_loop(cfg, json_out))
    console.print(f"wrote {json_out}")


@bench_app.command("forgetting")
def forgetting(
    data: DataOpt,
    source_group: SourceOpt,
    target_group: TargetOpt,
    json_out: JsonOpt,
    per_round: Annotated[int, typer.Option(min=1)] = 5,
    rounds: Annotated[
        int, typer.Option(min=1, max=10, help="Rounds of corrections per remedy.")
    ] = 1,
    quick: QuickOpt = False,
    remedies: Annotated[str | None, typer.Option(help="Comma-separated remedies.")] = None,
    base_budget: BaseBudgetOpt = None,
    base_size: BaseSizeOpt = None,
    device: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Rounds of corrections fine-tuned with each anti-forgetting remedy: gain, drop, time."""
    from medloop.bench.forgetting import run_forgetting

    cfg = run_guarded(
        lambda: _loop_config(
            data,
            source_group,
            target_group,
            rounds,
            per_round,
            quick,
            "weighted-replay",
            device,
            base_budget,
            base_size,
            {},
        )
    )
    run_guarded(lambda: run_forgetting(cfg, json_out, remedies.split(",") if remedies else None))
    console.print(f"wrote {json_out}")
