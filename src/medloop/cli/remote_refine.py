"""``medloop remote refine``: correct an analysis with clicks (2D images and volumes).

Registered on :data:`medloop.cli.remote.remote_app` when that module loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medloop.cli import remote
from medloop.cli.remote import (
    DEFAULT_SERVER,
    ProjectOpt,
    ServerOpt,
    TokenOpt,
    _fail,
    _out,
    remote_app,
)

__all__ = ["refine"]

_SIGNS = {"pos": True, "+": True, "neg": False, "-": False}


def _click(text: str) -> tuple[float, float, float | None, int, bool]:
    """``x,y,label[,sign]`` (2D) or ``x,y,z,label[,sign]`` (a volume), sign ``+``/``pos``
    or ``-``/``neg`` -> ``(x, y, z, label, positive)``."""
    parts = [p.strip() for p in text.split(",")]
    signed = parts[-1].lower() in _SIGNS
    sign = _SIGNS[parts[-1].lower()] if signed else True
    numbers = parts[:-1] if signed else parts
    try:
        if len(numbers) == 3:
            return float(numbers[0]), float(numbers[1]), None, int(numbers[2]), sign
        if len(numbers) == 4:
            x, y, z = (float(v) for v in numbers[:3])
            return x, y, z, int(numbers[3]), sign
        raise ValueError
    except ValueError:
        _fail(
            f"--click {text!r}: expected x,y,label[,+/-] or, on a volume, x,y,z,label[,+/-] "
            "(e.g. 120,80,1 or 12,20,9,1,-)",
            2,
        )


def _corners(box: str | None) -> list[float] | None:
    """``x0,y0,x1,y1`` or ``x0,y0,z0,x1,y1,z1`` -> the corners."""
    if box is None:
        return None
    try:
        corners = [float(v) for v in box.split(",")]
    except ValueError:
        corners = []
    if len(corners) not in (4, 6):
        _fail(f"--box {box!r}: expected x0,y0,x1,y1 or, on a volume, x0,y0,z0,x1,y1,z1", 2)
    return corners


@remote_app.command()
def refine(
    analysis: Annotated[str, typer.Argument(help="Analysis id (from `remote analyze`).")],
    project: ProjectOpt,
    click: Annotated[
        list[str] | None,
        typer.Option(
            help="x,y,label[,+/-] (2D: column, row) or x,y,z,label[,+/-] (a volume: voxel "
            "indices); - says 'not this label'."
        ),
    ] = None,
    box: Annotated[
        str | None, typer.Option(help="x0,y0,x1,y1 (or x0,y0,z0,x1,y1,z1) around an object.")
    ] = None,
    reset: Annotated[bool, typer.Option(help="Forget the earlier clicks first.")] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Save the label map here (PNG, or NIfTI for a volume)."),
    ] = None,
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
) -> None:
    """Refine an analysis with clicks (they add to your earlier ones; nothing is stored)."""
    from medloop.client import Click

    clicks = [
        Click(x=x, y=y, z=z, label=k, positive=p) for x, y, z, k, p in map(_click, click or [])
    ]
    corners = _corners(box)
    with remote._connect(server, token) as c:
        r = c.refine(project, analysis, clicks, box=corners, reset=reset)
        volume = r.depth is not None
        data = None if out is None else c.refined_labels(project, analysis) if volume else r.mask
    console = _out()
    dice = ", ".join(f"{d.name} {d.dice:.4f}" for d in r.dice_vs_prediction or [])
    unit = "voxels" if volume else "pixels"
    console.print(
        f"{r.clicks} clicks so far (model {r.model_version}); {r.changed_pixels} {unit} changed; "
        f"Dice vs the prediction: {dice or '-'}",
        highlight=False,
        markup=False,
    )
    if out is not None and data is not None:
        out.write_bytes(data)
        console.print(f"wrote the label map to {out}", highlight=False, markup=False)
