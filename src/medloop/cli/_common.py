"""What every command shares: the console, error reporting, progress callbacks."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from medloop.errors import InputError, MedloopError

if TYPE_CHECKING:
    from medloop.ml.trainer import TrainCallbacks

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr saying what to fix, then a non-zero exit."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run_guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; medloop errors become one line and exit 2 (input) or 1 (other)."""
    from pydantic import ValidationError

    from medloop.domain.base import validation_message

    try:
        return fn()
    except ValidationError as err:  # settings built from command-line options
        fail(f"{err.title}: {validation_message(err)}", 2)
    except InputError as err:
        fail(str(err), 2)
    except MedloopError as err:
        fail(str(err), 1)
    except KeyboardInterrupt:
        fail("interrupted; a training run resumes from its checkpoint when started again", 130)


@contextmanager
def training_progress(description: str, quiet: bool = False) -> Iterator[TrainCallbacks]:
    """Rich progress bar fed by trainer callbacks."""
    from medloop.ml.trainer import TrainCallbacks

    if quiet or not sys.stderr.isatty():
        last = {"pct": -1}

        def on_step_plain(step: int, total: int, loss: float) -> None:
            pct = int(100 * step / total)
            if pct // 10 != last["pct"] // 10:
                last["pct"] = pct
                err_console.print(
                    f"{description}: step {step}/{total} loss {loss:.3f}", highlight=False
                )

        yield TrainCallbacks(on_step=None if quiet else on_step_plain)
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TextColumn("loss {task.fields[loss]:.3f}  val Dice {task.fields[val]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
    ) as progress:
        task = progress.add_task(description, total=None, loss=float("nan"), val="-")

        def on_step(step: int, total: int, loss: float) -> None:
            progress.update(task, completed=step, total=total, loss=loss)

        def on_validate(step: int, dice: float) -> None:
            progress.update(task, val=f"{dice:.3f}")

        yield TrainCallbacks(on_step=on_step, on_validate=on_validate)
