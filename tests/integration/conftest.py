"""Tiny on-disk datasets for end-to-end runs of the CLI and services."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_disc_dataset(
    root: Path,
    n_train: int = 6,
    n_val: int = 2,
    n_test: int = 2,
    seed: int = 0,
    invert: bool = False,
) -> Path:
    """Manifest dataset of 64×64 gray images with bright (or, inverted, dark) discs; 0/255 masks."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    rows = []
    yy, xx = np.mgrid[:64, :64]
    for i, split in enumerate(["train"] * n_train + ["val"] * n_val + ["test"] * n_test):
        mask = np.zeros((64, 64), np.uint8)
        for _ in range(4):
            cy, cx, r = rng.integers(8, 56), rng.integers(8, 56), rng.integers(4, 8)
            mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
        img = rng.normal(60, 12, (64, 64)) + mask * 130.0
        if invert:
            img = 255 - img
        name = f"case ({i}).png"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / "images" / name)
        Image.fromarray(mask * 255).save(root / "masks" / name)
        rows.append(
            {
                "image": f"images/{name}",
                "mask": f"masks/{name}",
                "group": "dark" if invert else "bright",
                "split": split,
            }
        )
    with open(root / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["image", "mask", "group", "split"])
        w.writeheader()
        w.writerows(rows)
    return root


@pytest.fixture
def disc_data(tmp_path: Path) -> Path:
    return write_disc_dataset(tmp_path / "discs")


@pytest.fixture
def correction_data(tmp_path: Path) -> Path:
    return write_disc_dataset(
        tmp_path / "corrections", n_train=3, n_val=0, n_test=0, seed=5, invert=True
    )


def write_volume_dataset(
    root: Path, n_train: int = 6, n_val: int = 4, n_test: int = 2, seed: int = 0
) -> Path:
    """Manifest dataset of 24x28x20 NIfTI volumes (LPS, 1 x 1 x 2 mm) with two-label blobs."""
    import gzip
    import io

    import nibabel as nib

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    affine = np.array([[-1.0, 0, 0, 30], [0, -1.0, 0, 40], [0, 0, 2.0, -10], [0, 0, 0, 1]])
    xx, yy, zz = np.mgrid[:24, :28, :20]
    rows = []
    for i, split in enumerate(["train"] * n_train + ["val"] * n_val + ["test"] * n_test):
        c = rng.integers(8, 16, 3)
        r = rng.integers(4, 7)
        blob = (xx - c[0]) ** 2 + (yy - c[1]) ** 2 + (2 * (zz - c[2])) ** 2 <= r * r
        mask = np.where(blob, np.where(xx < c[0], 1, 2), 0).astype(np.uint8)
        img = (rng.normal(100, 15, mask.shape) + (mask > 0) * 120).astype(np.int16)
        for sub, arr in (("images", img), ("masks", mask)):
            vol = nib.Nifti1Image(arr, affine)
            buf = io.BytesIO()
            vol.to_file_map(
                {"image": nib.FileHolder(fileobj=buf), "header": nib.FileHolder(fileobj=buf)}
            )
            (root / sub / f"case{i}.nii.gz").write_bytes(gzip.compress(buf.getvalue()))
        rows.append(
            {
                "image": f"images/case{i}.nii.gz",
                "mask": f"masks/case{i}.nii.gz",
                "group": "mri",
                "split": split,
            }
        )
    with open(root / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["image", "mask", "group", "split"])
        w.writeheader()
        w.writerows(rows)
    (root / "dataset.json").write_text('{"labels": {"0": "background", "1": "left", "2": "right"}}')
    return root


@pytest.fixture
def volume_data(tmp_path: Path) -> Path:
    return write_volume_dataset(tmp_path / "volumes")
