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
