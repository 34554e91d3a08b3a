"""A registry written by medloop before typed settings still works with today's commands."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from typer.testing import CliRunner

from medloop.cli import app

FIXTURE = Path(__file__).parents[1] / "fixtures" / "legacy-cli-registry.tar.gz"
runner = CliRunner()


def _ok(args: list[str]) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return res.output


def test_a_registry_of_the_previous_layout_lists_analyses_and_finetunes(tmp_path: Path) -> None:
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(tmp_path, filter="data")
    reg, data = tmp_path / "legacy-registry", tmp_path / "cli-src"
    project = json.loads((reg / "project.json").read_text())
    assert "format" not in project  # really the old layout
    project["reference_root"] = str(data)
    (reg / "project.json").write_text(json.dumps(project))

    listing = json.loads(_ok(["models", "list", "--registry", str(reg), "--json"]))
    assert [(v["version"], v["status"]) for v in listing] == [
        ("v0001", "retired"),
        ("v0002", "production"),
    ]
    show = json.loads(_ok(["models", "show", "v0002", "--registry", str(reg)]))
    assert show["lineage"]["parent"] == "v0001" and len(show["files"]["weights.pt"]) == 64

    _ok(
        [
            "analyze",
            str(data / "images" / "case (4).png"),
            "--registry",
            str(reg),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert json.loads((tmp_path / "o" / "case (4).json").read_text())["model_version"] == "v0002"

    out = _ok(["finetune", "--registry", str(reg), "--steps", "3"])
    assert "v0003 (from v0002)" in out and "trained on 3 corrections" in out
    lineage = json.loads(_ok(["models", "show", "v0003", "--registry", str(reg)]))["lineage"]
    assert sum(r["role"] == "correction" for r in lineage["data"]) == 3
    assert not list((reg / "corrections" / "blobs").glob("*.png"))  # moved into the blob store
