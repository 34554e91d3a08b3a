"""``medloop remote analyze|correct|refine|models|jobs|review``: the device side, over HTTP.

Every command talks to a medloop server through :mod:`medloop.client`. The token comes from
``MEDLOOP_TOKEN`` (``--token`` also works, but a command line is visible to other users of
the machine), the server from ``--server`` or ``MEDLOOP_SERVER`` (default
``http://127.0.0.1:8000``), the project from ``--project`` or ``MEDLOOP_PROJECT``. For a
server whose certificate comes from a private CA, set ``MEDLOOP_CA_BUNDLE`` to the CA file.

Errors print one line, ``error: ...``, on stderr; the exit code is 2 for a refused request
(4xx, a missing file or token) and 1 for everything else (server error, no connection).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from medloop.cli._remote_files import save_results

if TYPE_CHECKING:
    from medloop.client import JobOut, MedloopClient

__all__ = ["remote_app"]

DEFAULT_SERVER = "http://127.0.0.1:8000"

remote_app = typer.Typer(
    help="Use a medloop server: analyse images, send corrections, watch models and jobs.",
    no_args_is_help=True,
)

ServerOpt = Annotated[
    str,
    typer.Option(
        "--server", envvar="MEDLOOP_SERVER", help="Server URL (https://... outside this machine)."
    ),
]
ProjectOpt = Annotated[
    str, typer.Option("--project", "-p", envvar="MEDLOOP_PROJECT", help="Project id or name.")
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="MEDLOOP_TOKEN",
        show_default=False,
        help="API token; prefer the MEDLOOP_TOKEN environment variable.",
    ),
]


def _out() -> Console:
    return Console()


def _error_line(message: str) -> None:
    """``error: message`` in red on stderr, on one line (no wrapping)."""
    flat = " ".join(message.splitlines())
    Console(stderr=True).print(Text(f"error: {flat}", style="red"), highlight=False, soft_wrap=True)


def _fail(message: str, code: int) -> NoReturn:
    """One red line on stderr, then exit with ``code``."""
    _error_line(message)
    raise typer.Exit(code)


def _client(server: str, token: str) -> MedloopClient:
    """The client every command uses (tests replace this factory)."""
    from medloop.client import MedloopClient

    ca_bundle = os.environ.get("MEDLOOP_CA_BUNDLE") or None
    return MedloopClient(server, token, verify=ca_bundle or True)


@contextmanager
def _connect(server: str, token: str | None) -> Iterator[MedloopClient]:
    """A client for the command; client errors become ``error: ...`` and an exit code."""
    if not token or not token.strip():
        _fail("set MEDLOOP_TOKEN to your API token (from `medloop users add`)", 2)
    from medloop.client import ApiError, InvalidArgument, MedloopClientError

    try:
        client = _client(server, token)
        try:
            yield client
        finally:
            client.close()
    except ApiError as err:
        _fail(str(err), 2 if err.status < 500 else 1)
    except InvalidArgument as err:
        _fail(str(err), 2)
    except MedloopClientError as err:
        _fail(str(err), 1)


def _need_file(path: Path, what: str) -> None:
    if not path.is_file():
        _fail(f"{what} {path} does not exist", 2)


def _row(table: Table, *cells: str | Text) -> None:
    """Add a row; server-provided text is shown literally, never as rich markup."""
    table.add_row(*(escape(c) if isinstance(c, str) else c for c in cells))


def _mm2(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _dice(metrics: dict[str, object], key: str) -> str:
    block = metrics.get(key)
    if isinstance(block, dict) and isinstance(block.get("mean_dice"), int | float):
        return f"{block['mean_dice']:.4f}"
    return "-"


@remote_app.command()
def analyze(
    images: Annotated[
        list[Path],
        typer.Argument(help="Images (PNG, DICOM...), volumes (NIfTI, NRRD), DICOM series folders."),
    ],
    project: ProjectOpt,
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Save <image>_mask.png, _overlay.png, _analysis.json here (a volume: "
            "<image>_labels.nii.gz and _axial.png, its middle axial slice with the labels).",
        ),
    ] = None,
    version: Annotated[
        str | None, typer.Option(help="Model version (default: production).")
    ] = None,
) -> None:
    """Upload and analyse each image: model version, uncertainty, per-class measurements."""
    from medloop.client import BadRequest

    for img in (i for i in images if not i.is_dir()):  # a folder: a DICOM series
        _need_file(img, "image")
    table = Table(
        "image", "analysis", "version", "uncertainty", "class", "area px", "mm²|mm³", "components"
    )
    table.columns[1].no_wrap = True
    refused: list[str] = []
    used: set[str] = set()
    with _connect(server, token) as c:
        for img in images:
            try:
                a = c.analyze(project, file=img, version=version)
            except BadRequest as e:
                refused.append(img.name)
                _error_line(f"{img}: {e}")
                continue
            head = [img.name, a.id, a.model_version, f"{a.uncertainty:.3f}"]
            if not a.measurements:
                _row(table, *head, "-", "-", "-", "-")
            for k, m in enumerate(a.measurements):
                _row(
                    table,
                    *(head if k == 0 else ["", "", "", ""]),
                    m.name,
                    str(m.area_px),
                    _mm2(m.volume_mm3 if a.volume else m.area_mm2),
                    str(m.components),
                )
            if out is not None:
                stem = img.stem if img.stem not in used else f"{img.stem}-{a.id}"
                used.add(stem)
                save_results(c, project, a, out, stem)
    console = _out()
    done = len(images) - len(refused)
    if done:
        console.print(table)
    console.print(f"analysed {done} of {len(images)} images", highlight=False, markup=False)
    if out is not None and done:
        console.print(f"wrote masks and overlays to {out}", highlight=False, markup=False)
    if refused:
        raise typer.Exit(2)


@remote_app.command()
def correct(
    analysis: Annotated[str, typer.Argument(help="Analysis id (from `remote analyze`).")],
    mask: Annotated[
        Path, typer.Argument(help="Corrected label map (PNG, pixel value = label value).")
    ],
    project: ProjectOpt,
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
) -> None:
    """Send a corrected mask for an analysis; prints its agreement with the prediction."""
    _need_file(mask, "mask")
    with _connect(server, token) as c:
        fix = c.correct(project, analysis, mask)
    console = _out()
    console.print(
        f"correction {fix.id} (#{fix.seq}) stored for analysis {fix.analysis_id} "
        f"(model {fix.model_version})",
        highlight=False,
        markup=False,
    )
    console.print(
        f"agreement with the prediction: Dice {fix.dice_vs_prediction:.4f}",
        highlight=False,
        markup=False,
    )
    if fix.held_out:
        console.print("held out: scores candidates at the promotion gate, not trained on")
    if fix.finetune_job_id:
        console.print(
            f"fine-tune job {fix.finetune_job_id} started; follow it with "
            f"`medloop remote jobs --watch {fix.finetune_job_id}`",
            highlight=False,
            markup=False,
        )
    elif fix.corrections_until_finetune is None:
        console.print("automatic fine-tuning is off for this project")
    else:
        n = fix.corrections_until_finetune
        console.print(
            f"{n} more correction{'s' if n != 1 else ''} until the next fine-tune",
            highlight=False,
            markup=False,
        )


@remote_app.command()
def models(project: ProjectOpt, server: ServerOpt = DEFAULT_SERVER, token: TokenOpt = None) -> None:
    """Model versions: status, parent, kind, validation and held-out Dice."""
    with _connect(server, token) as c:
        page = c.list_models(project)
    table = Table("version", "status", "parent", "kind", "created", "val Dice", "held-out Dice")
    for v in page.items:
        status = Text(v.status, style="bold green" if v.status == "production" else "")
        _row(
            table,
            v.version,
            status,
            v.parent or "-",
            v.kind,
            v.created_at,
            _dice(v.metrics, "locked_val"),
            _dice(v.metrics, "heldout_corrections"),
        )
    _out().print(table)


def _job_line(job: JobOut) -> str:
    line = f"job {job.id} ({job.kind}): {job.state} {job.progress:.0%}"
    if job.error:
        line += f" - {job.error}"
    return line


@remote_app.command()
def jobs(
    project: ProjectOpt,
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
    watch: Annotated[
        str | None,
        typer.Option(help="Follow this job until it finishes (exit 1 unless it succeeds)."),
    ] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds --watch waits.")] = 3600.0,
    poll: Annotated[float, typer.Option(min=0, help="Seconds between polls.")] = 2.0,
) -> None:
    """The project's learning jobs, or follow one with --watch."""
    console = _out()
    if watch is None:
        with _connect(server, token) as c:
            page = c.list_jobs(project)
        table = Table("job", "kind", "state", "progress", "attempts", "created", "error")
        table.columns[0].no_wrap = True
        for j in page.items:
            _row(
                table,
                j.id,
                j.kind,
                j.state,
                f"{j.progress:.0%}",
                str(j.attempts),
                j.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                j.error or "",
            )
        console.print(table)
        return

    seen: list[tuple[str, int]] = []

    def show(job: JobOut) -> None:
        key = (job.state, int(job.progress * 100))
        if not seen or seen[-1] != key:
            seen.append(key)
            console.print(_job_line(job), highlight=False, markup=False)

    with _connect(server, token) as c:
        job = c.wait_for_job(project, watch, timeout=timeout, poll=poll, on_update=show)
    if job.result:
        for k, v in job.result.items():
            console.print(f"  {k}: {v}", highlight=False, markup=False)
    if job.state != "succeeded":
        _fail(f"job {job.id} {job.state}" + (f": {job.error}" if job.error else ""), 1)


@remote_app.command()
def review(
    project: ProjectOpt,
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
) -> None:
    """The review queue: uncorrected analyses, most uncertain first."""
    with _connect(server, token) as c:
        page = c.review_queue(project, limit=limit)
    table = Table("#", "analysis", "image", "version", "uncertainty", "analysed")
    table.columns[1].no_wrap = True
    for k, item in enumerate(page.items, start=1):
        a = item.analysis
        _row(
            table,
            str(k),
            a.id,
            item.image.filename,
            a.model_version,
            f"{a.uncertainty:.3f}",
            a.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    console = _out()
    console.print(table)
    total = page.total if page.total is not None else len(page.items)
    console.print(f"{total} analyses waiting for review", highlight=False, markup=False)


# The refine command lives in its own module and registers itself on remote_app.
from medloop.cli import remote_refine  # noqa: E402, F401
