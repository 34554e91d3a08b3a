"""The CLI end to end on tiny data: train, list, analyze, finetune, evaluate, promote, rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from medloop.cli import app

runner = CliRunner()
TINY = [
    "--steps",
    "30",
    "--patch-size",
    "32",
    "--channels",
    "8,16,32",
    "--batch-size",
    "4",
    "--val-every",
    "15",
]


def _ok(args: list[str]) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return res.output


def test_the_loop_from_the_command_line(
    disc_data: Path, correction_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = tmp_path / "reg"
    train = ["train", str(disc_data), "--registry", str(reg), "--labels", "disc", *TINY]
    out = _ok([*train, "--flip-axes", "1"])
    assert "v0001: promoted to production" in out and "flips set by the user" in out
    (manifest,) = reg.rglob("v0001/manifest.json")
    assert json.loads(manifest.read_text())["plan"]["mirror_axes"] == [1]

    listing = json.loads(_ok(["models", "list", "--registry", str(reg), "--json"]))
    assert [(v["version"], v["status"]) for v in listing] == [("v0001", "production")]

    img = disc_data / "images" / "case (8).png"
    _ok(["analyze", str(img), "--registry", str(reg), "--out", str(tmp_path / "res")])
    result = json.loads((tmp_path / "res" / "case (8).json").read_text())
    assert result["model_version"] == "v0001"
    assert 0.0 <= result["uncertainty"] <= 1.0
    assert result["measurements"][0]["name"] == "disc"
    labels = Image.open(tmp_path / "res" / "case (8).labels.png")
    assert labels.size == (64, 64) and labels.mode == "L"
    assert Image.open(tmp_path / "res" / "case (8).overlay.png").mode == "RGB"

    finetune = ["finetune", "--registry", str(reg), "--corrections", str(correction_data)]
    res = runner.invoke(app, [*finetune, "--steps", "10", "--budget", "soon"])
    assert res.exit_code == 2 and "a budget is like 5m" in res.output, res.output
    assert not [p for p in (reg / "corrections").rglob("*") if p.is_file()]  # nothing stored
    out = _ok([*finetune, "--steps", "10", "--budget", "2m"])
    assert "stored 3 corrections" in out and "v0002 (from v0001)" in out
    show = json.loads(_ok(["models", "show", "v0002", "--registry", str(reg)]))
    lineage = show["lineage"]
    assert lineage["parent"] == "v0001"
    assert lineage["hyperparameters"]["train"]["max_seconds"] == 120.0
    assert sum(r["role"] == "correction" for r in lineage["data"]) == 3
    assert all(r["weight"] == 64.0 for r in lineage["data"] if r["role"] == "correction")
    assert all(len(r["image_sha256"]) == 64 for r in lineage["data"])
    assert show["report"]["against"] == "v0001"

    ev = tmp_path / "eval.json"
    _ok(
        [
            "evaluate",
            "--registry",
            str(reg),
            "--data",
            str(disc_data),
            "--version",
            "v0001",
            "--json",
            str(ev),
        ]
    )
    summary = json.loads(ev.read_text())
    assert summary["n_images"] == 2 and 0.0 <= summary["mean_dice"] <= 1.0
    assert show["report"]["production"]["locked_recalled"] == len(show["report"]["locked"])

    # A split with no pairs is refused before any weights are loaded.
    def no_weights(*args: object) -> None:
        raise AssertionError("weights loaded for an empty split")

    from medloop.ml.inference import Predictor

    with monkeypatch.context() as m:
        m.setattr(Predictor, "from_bytes", no_weights)
        args = ["evaluate", "--registry", str(reg), "--data", str(disc_data), "--split", "nosuch"]
        res = runner.invoke(app, args)
    assert res.exit_code != 0 and "no pairs in split 'nosuch'" in res.output, res.output

    _ok(["models", "promote", "v0002", "--registry", str(reg)])
    assert "v0001 is in production" in _ok(["models", "rollback", "--registry", str(reg)])


def test_bad_input_gives_one_line_and_nonzero_exit(disc_data: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["train", str(tmp_path / "nope"), "--registry", str(tmp_path / "r")])
    assert res.exit_code == 2 and "does not exist" in res.output

    (disc_data / "masks" / "case (0).png").unlink()
    (disc_data / "manifest.csv").unlink()
    res = runner.invoke(app, ["train", str(disc_data), "--registry", str(tmp_path / "r"), *TINY])
    assert res.exit_code == 2 and "case (0).png" in res.output
    assert not (tmp_path / "r" / "versions").exists() or not any(
        (tmp_path / "r" / "versions").iterdir()
    )

    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not an image")
    res = runner.invoke(
        app, ["analyze", str(junk), "--registry", str(tmp_path / "r"), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code != 0 and "error:" in res.output

    res = runner.invoke(app, ["models", "promote", "v0009", "--registry", str(tmp_path / "r")])
    assert res.exit_code == 1 and "v0009" in res.output


def test_finetune_without_corrections_is_a_clear_error(disc_data: Path, tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    _ok(["train", str(disc_data), "--registry", str(reg), *TINY])
    res = runner.invoke(app, ["finetune", "--registry", str(reg)])
    assert res.exit_code == 1 and "no corrections" in res.output
