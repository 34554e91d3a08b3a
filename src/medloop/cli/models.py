"""``medloop models list|show|promote|rollback``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from medloop.cli._common import console, run_guarded

models_app = typer.Typer(
    help="List, inspect, promote and roll back model versions.", no_args_is_help=True
)
RegistryOpt = Annotated[Path, typer.Option("--registry", "-r", help="Model registry folder.")]


if TYPE_CHECKING:
    from medloop.storage.folder_registry import FolderArtifactStore


def _registry(root: Path) -> FolderArtifactStore:
    from medloop.errors import RegistryError
    from medloop.storage.folder_registry import FolderArtifactStore

    if not root.is_dir():
        raise RegistryError(f"registry {root} does not exist")
    return FolderArtifactStore(root)


@models_app.command("list")
def list_versions(
    registry: RegistryOpt, json_out: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Every version with status, parent, kind and locked-validation Dice."""
    records = run_guarded(lambda: _registry(registry).versions())
    if json_out:
        rows = [
            {
                "version": r.name,
                "status": r.status.value,
                "parent": r.parent,
                "kind": r.kind,
                "created_at": r.created_at,
                "metrics": r.metrics,
            }
            for r in records
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("version", "status", "parent", "kind", "created", "val Dice", "held-out Dice")
    for r in records:
        held = r.metrics.get("heldout_corrections") or {}
        table.add_row(
            r.name,
            r.status.value,
            r.parent or "-",
            r.kind,
            r.created_at,
            f"{r.metrics['locked_val']['mean_dice']:.4f}",
            f"{held['mean_dice']:.4f}" if held else "-",
        )
    console.print(table)


@models_app.command("show")
def show(registry: RegistryOpt, version: Annotated[str, typer.Argument()]) -> None:
    """Manifest, lineage, metrics and gate report of one version, as JSON."""

    def go() -> dict[str, object]:
        rec = _registry(registry).get(version)
        return {
            "version": rec.name,
            "status": rec.status.value,
            "manifest": rec.manifest.to_dict(),
            "lineage": rec.lineage.to_dict(),
            "metrics": rec.metrics,
            "files": rec.files,
            "report": rec.report,
        }

    typer.echo(json.dumps(run_guarded(go), indent=2))


@models_app.command("promote")
def promote(
    registry: RegistryOpt,
    version: Annotated[str, typer.Argument()],
    reason: Annotated[
        str | None, typer.Option(help="Why; required over the gate's rejection.")
    ] = None,
    actor: Annotated[str, typer.Option(help="Who promotes (for the event log).")] = "cli",
) -> None:
    """Put VERSION in production by hand (over a rejection only with --reason)."""
    from medloop.domain.gate import promotion_reason

    def go() -> None:
        store = _registry(registry)
        why = promotion_reason(store.get(version), actor, reason)
        store.promote(version, reason=why, actor=actor)
        console.print(f"{version} is in production ({why})", highlight=False)

    run_guarded(go)


@models_app.command("rollback")
def rollback(registry: RegistryOpt, reason: str = "manual") -> None:
    """Return production to the version that served before the current one."""
    rec = run_guarded(lambda: _registry(registry).rollback(reason=reason))
    console.print(f"rolled back: {rec.name} is in production")
