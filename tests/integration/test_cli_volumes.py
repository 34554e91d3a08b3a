"""The engine commands on volumes: plan, train, analyse (NIfTI out on the input's grid),
fine-tune, evaluate; bad volumes and budgets give one line, exit 2, and no registry."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
from typer.testing import CliRunner

from medloop.cli import app

runner = CliRunner()
TINY = ["--steps", "20", "--channels", "8,16,32", "--batch-size", "2", "--labels", "left,right"]


def _ok(args: list[str]) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return res.output


def test_volumes_train_analyse_finetune_evaluate(volume_data: Path, tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    out = _ok(["train", str(volume_data), "--registry", str(reg), *TINY])
    assert "plan: 3D, spacing 1x1x2 mm" in out and "v0001: promoted" in out
    show = json.loads(_ok(["models", "show", "v0001", "--registry", str(reg)]))
    assert show["manifest"]["network"]["spatial_dims"] == 3
    assert show["manifest"]["plan"]["reasons"] and show["manifest"]["plan"]["fingerprint"]

    src = volume_data / "images" / "case10.nii.gz"
    _ok(["analyze", str(src), "--registry", str(reg), "--out", str(tmp_path / "res")])
    result = json.loads((tmp_path / "res" / "case10.nii.json").read_text())
    assert result["shape"] == [24, 28, 20] and result["spacing_mm"] == [1.0, 1.0, 2.0]
    m = result["measurements"][0]
    assert m["area_mm2"] is None and m["volume_mm3"] == 2.0 * m["area_px"]
    labels = nib.Nifti1Image.from_bytes(
        gzip.decompress((tmp_path / "res" / "case10.nii.labels.nii.gz").read_bytes())
    )
    source = nib.load(src)
    assert labels.shape == source.shape and np.allclose(labels.affine, source.affine)

    corrections = tmp_path / "corr"
    shutil.copytree(volume_data, corrections)
    out = _ok(
        ["finetune", "--registry", str(reg), "--corrections", str(corrections), "--steps", "5"]
    )
    assert "v0002 (from v0001)" in out
    ev = tmp_path / "ev.json"
    _ok(["evaluate", "--registry", str(reg), "--data", str(volume_data), "--json", str(ev)])
    summary = json.loads(ev.read_text())
    assert summary["n_images"] == 2 and len(summary["dice"]) == 2 and len(summary["hd95"]) == 2


def _fails(args: list[str], message: str, reg: Path) -> None:
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert message in res.output and len(res.output.strip().splitlines()) <= 3, res.output
    assert not reg.exists()


def _write(path: Path, arr: np.ndarray, affine: np.ndarray) -> None:
    nib.save(nib.Nifti1Image(arr, affine), path)


def test_bad_volumes_and_budgets_write_nothing(volume_data: Path, tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    affine = nib.load(volume_data / "images" / "case0.nii.gz").affine
    mask = volume_data / "masks" / "case0.nii.gz"

    _write(mask, np.zeros((24, 28, 19), np.uint8), affine)
    _fails(["train", str(volume_data), "--registry", str(reg), *TINY], "case0.nii.gz", reg)

    _write(mask, np.full((24, 28, 20), 7, np.uint8), affine)
    _fails(["train", str(volume_data), "--registry", str(reg), *TINY], "outside", reg)

    shifted = affine.copy()
    shifted[0, 3] += 10
    _write(mask, np.zeros((24, 28, 20), np.uint8), shifted)
    _fails(["train", str(volume_data), "--registry", str(reg), *TINY], "affine", reg)

    _write(mask, np.zeros((24, 28, 20), np.uint8), affine)
    _write(volume_data / "images" / "case0.nii.gz", np.zeros((24, 28, 20, 3), np.int16), affine)
    _fails(["train", str(volume_data), "--registry", str(reg), *TINY], "4D", reg)


def test_a_budget_that_cannot_fit_one_step_is_refused(volume_data: Path, tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    _fails(
        [
            "train",
            str(volume_data),
            "--registry",
            str(reg),
            "--budget",
            "10s",
            "--labels",
            "left,right",
            "--channels",
            "128,256,512,1024",
        ],
        "raise the budget",
        reg,
    )
    _fails(["train", str(volume_data), "--registry", str(reg), "--budget", "soon"], "budget", reg)


def test_bench_interactive_clicks_through_the_test_split(disc_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "interactive.json"
    res = runner.invoke(
        app,
        ["bench", "interactive", "--data", str(disc_data), "--steps", "15", "--json", str(out)],
    )
    assert res.exit_code == 0, res.output
    result = json.loads(out.read_text())
    guided = result["click-guided"]
    assert guided["images"] == 2 and 0 <= guided["noc85"] <= 20 and 0 <= guided["noc90"] <= 20
    assert 0 <= guided["dice_5"] <= 1 and guided["seconds_per_click_p50"] > 0
    assert "dice_0" in result["automatic"]
    for name, interactive in (("automatic", False), ("click-guided", True)):
        plan = result[name]["plan"]  # each model's plan, for the README's figures
        assert plan["interactive"] is interactive and plan["steps"] == 15 and plan["patch_size"]
