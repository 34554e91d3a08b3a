"""`medloop train --interactive` trains a click-guided version; `bench interactive
--registry` clicks through `test` with it instead of training; wrong uses give one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medloop.cli import app

runner = CliRunner()
TINY = ["--steps", "20", "--channels", "8,16,32", "--batch-size", "2"]


def _ok(args: list[str]) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return res.output


def _fails(args: list[str], message: str, code: int = 2) -> None:
    res = runner.invoke(app, args)
    assert res.exit_code == code, res.output
    assert message in res.output and len(res.output.strip().splitlines()) <= 3, res.output


@pytest.fixture
def clicked(disc_data: Path, tmp_path: Path) -> Path:
    reg = tmp_path / "clicks"
    assert "v0001: promoted" in _ok(
        ["train", str(disc_data), "--registry", str(reg), "--interactive", *TINY]
    )
    return reg


def test_a_trained_click_guided_version_is_benchmarked_without_training(
    clicked: Path, disc_data: Path, tmp_path: Path
) -> None:
    show = json.loads(_ok(["models", "show", "v0001", "--registry", str(clicked)]))
    assert show["manifest"]["guidance"] is not None  # image + click channels
    out = tmp_path / "noc.json"
    printed = _ok(
        [
            "bench",
            "interactive",
            "--data",
            str(disc_data),
            "--registry",
            str(clicked),
            "--json",
            str(out),
        ]
    )
    assert f"clicked with v0001 of {clicked}" in printed.replace("\n", "")
    result = json.loads(out.read_text())
    assert result["version"] == {"registry": str(clicked), "name": "v0001"}
    assert "automatic" not in result  # nothing was trained
    guided = result["click-guided"]
    assert guided["images"] == 2 and 0 <= guided["noc85"] <= guided["noc90"] <= 20
    # The 0-click row is the version's automatic answer: what `evaluate` scores.
    ev = tmp_path / "ev.json"
    _ok(["evaluate", "--registry", str(clicked), "--data", str(disc_data), "--json", str(ev)])
    assert guided["dice_0"] == pytest.approx(json.loads(ev.read_text())["mean_dice"], abs=1e-6)


def test_wrong_uses_say_what_to_fix_and_write_nothing(
    clicked: Path, disc_data: Path, volume_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "noc.json"
    base = ["bench", "interactive", "--data", str(disc_data), "--json", str(out)]
    _fails([*base, "--registry", str(clicked), "--steps", "5"], "leave out --budget")
    _fails([*base, "--version", "v0001"], "--version needs --registry")
    _fails([*base, "--registry", str(tmp_path / "none")], "does not exist")
    _fails([*base, "--registry", str(clicked), "--version", "v0009"], "v0009", 1)  # as `evaluate`
    plain = tmp_path / "plain"
    _ok(["train", str(disc_data), "--registry", str(plain), *TINY])
    _fails([*base, "--registry", str(plain)], "not trained for clicks")
    two = tmp_path / "two"
    _ok(
        ["train", str(disc_data), "--registry", str(two), "--interactive", "--labels", "a,b", *TINY]
    )
    _fails([*base, "--registry", str(two)], "has 2 label(s)")
    vols = ["bench", "interactive", "--data", str(volume_data), "--json", str(out)]
    _fails([*vols, "--registry", str(two)], "v0001 is a 2D model")  # two labels, as the volumes
    assert not out.exists()
