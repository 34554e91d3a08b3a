"""``medloop export``: a server project's training data as a dataset folder."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from medloop.cli._common import console, fail, run_guarded

if TYPE_CHECKING:
    from medloop.services.export import ExportReport


def export(
    out: Annotated[Path, typer.Argument(help="New (or empty) folder to write the dataset to.")],
    project: Annotated[str, typer.Option(help="Project id or name.")],
    deidentify: Annotated[
        bool,
        typer.Option(
            "--deidentify",
            help="Apply the DICOM PS3.15 Basic Profile; set aside instances whose "
            "BurnedInAnnotation is not NO.",
        ),
    ] = False,
    key: Annotated[
        str | None,
        typer.Option(
            help="Secret for the pseudonyms (MEDLOOP_DEID_KEY); the same key gives the same "
            "pseudonyms in every export. Default: a new one per export.",
            envvar="MEDLOOP_DEID_KEY",
        ),
    ] = None,
    pseudonym_map: Annotated[
        Path | None,
        typer.Option(
            "--map", help="Write the pseudonym map (a CSV) here: keep it apart from the export."
        ),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Server data folder (MEDLOOP_DATA_DIR).")
    ] = None,
) -> None:
    """Export reference pairs and corrections as images/, masks/ and manifest.csv."""
    if pseudonym_map is not None:
        if not deidentify:
            fail("--map needs --deidentify")
        if pseudonym_map.resolve().is_relative_to(out.resolve()):
            fail("--map must be outside the export folder: the map re-identifies it")

    def go() -> ExportReport:
        from medloop.cli.server import server_settings
        from medloop.runtime import Runtime
        from medloop.services.export import export_training_set

        rt = Runtime(server_settings(data_dir))
        try:
            pid = rt.services.projects.find(project).id
            return export_training_set(rt.services.images, pid, out, deidentify=deidentify, key=key)
        finally:
            rt.stop()

    report = run_guarded(go)
    if pseudonym_map is not None:
        pseudonym_map.parent.mkdir(parents=True, exist_ok=True)
        with open(pseudonym_map, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["kind", "original", "pseudonym"])
            writer.writerows(report.pseudonyms)
    console.print(
        f"exported {report.written} pair(s) to {out}"
        + (f"; {len(report.set_aside)} set aside (see set_aside.csv)" if report.set_aside else "")
        + ("; de-identified (PS3.15 Basic Profile)" if deidentify else "")
    )
