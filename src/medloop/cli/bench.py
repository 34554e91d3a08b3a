"""``medloop bench accuracy|loop``: the benchmarks in ``src/medloop/bench``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medloop.cli._common import console, run_guarded

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


@bench_app.command("loop")
def loop(
    data: Annotated[Path, typer.Option(help="Dataset with groups and splits.")],
    source_group: Annotated[str, typer.Option(help="Group the base model is trained on.")],
    target_group: Annotated[str, typer.Option(help="Group the corrections come from.")],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results.")],
    rounds: Annotated[int, typer.Option(min=1)] = 2,
    per_round: Annotated[int, typer.Option(min=1)] = 5,
    quick: Annotated[bool, typer.Option(help="Small budget for a CPU.")] = False,
    strategies: Annotated[str, typer.Option(help="Comma-separated strategies to run.")] = (
        "weighted-replay,corrections-only,all-equal,retrain"
    ),
    correction_weight: Annotated[
        float | None, typer.Option(help="Override the budget's w.")
    ] = None,
    replay_size: Annotated[int | None, typer.Option(help="Override the replay size.")] = None,
    finetune_steps: Annotated[
        int | None, typer.Option(help="Override the fine-tune steps.")
    ] = None,
    device: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Simulated clinician: base on SOURCE, corrections from TARGET, per strategy, per round."""
    from medloop.bench.loop import LoopConfig, run_loop

    cfg = LoopConfig(
        data=data,
        source_group=source_group,
        target_group=target_group,
        rounds=rounds,
        per_round=per_round,
        quick=quick,
        strategies=tuple(strategies.split(",")),
        device=device,
        correction_weight=correction_weight,
        replay_size=replay_size,
        finetune_steps=finetune_steps,
    )
    run_guarded(lambda: run_loop(cfg, json_out))
    console.print(f"wrote {json_out}")
