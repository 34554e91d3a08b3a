"""Datasets: folder pairing, manifests, and the errors that say what to fix."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from medloop.errors import DatasetError, MaskError
from medloop.io import Dataset, Sample, check_pairs, load_dataset

SHARED = Path("/work/shared/data/dsb2018_nuclei")

MakePairs = Callable[..., Path]


def _write_manifest(root: Path, rows: list[dict[str, str]], fields: list[str]) -> None:
    with open(root / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def test_folder_pairing_by_stem(make_pairs: MakePairs) -> None:
    root = make_pairs(["b.tif", "a.png", "c"], ["a.png", "b.png", "c.bmp"])
    (root / "images" / ".DS_Store").write_bytes(b"junk")
    (root / "masks" / "._a.png").write_bytes(b"junk")
    (root / "images" / "notes.txt").write_text("ignored")
    dataset = load_dataset(root)
    assert [s.key for s in dataset.samples] == ["images/a.png", "images/b.tif", "images/c"]
    assert dataset.samples[1] == Sample(
        "images/b.tif", root / "images" / "b.tif", root / "masks" / "b.png"
    )
    assert len(dataset) == 3
    assert dataset.splits == () and dataset.groups == ()
    check_pairs(dataset, num_foreground=1)


def test_names_with_spaces_and_parentheses(make_pairs: MakePairs) -> None:
    root = make_pairs(["benign (1).png", "benign (10).png"], ["benign (1).png", "benign (10).png"])
    dataset = load_dataset(str(root))
    assert [s.key for s in dataset.samples] == ["images/benign (1).png", "images/benign (10).png"]
    check_pairs(dataset, num_foreground=1)


def test_dicom_uid_names_pair(make_pairs: MakePairs) -> None:
    root = make_pairs(["1.2.840.5"], ["1.2.840.5.png"])
    (root / "masks" / "1.2.840.5.png").rename(root / "masks" / "1.2.840.5")
    assert [s.key for s in load_dataset(root).samples] == ["images/1.2.840.5"]


def test_unpaired_files_are_named(make_pairs: MakePairs) -> None:
    root = make_pairs(["a.png", "lonely (2).png"], ["a.png", "orphan.png"])
    with pytest.raises(DatasetError) as info:
        load_dataset(root)
    message = str(info.value)
    assert "1 image(s) without a mask: lonely (2).png" in message
    assert "1 mask(s) without an image: orphan.png" in message


def test_unpaired_list_is_capped(make_pairs: MakePairs) -> None:
    root = make_pairs([f"i{n}.png" for n in range(8)], [])
    with pytest.raises(
        DatasetError, match=r"8 image\(s\) without a mask: i0.png, .*i4.png, \.\.\."
    ):
        load_dataset(root)


def test_same_stem_twice(make_pairs: MakePairs) -> None:
    root = make_pairs(["a.png", "a.tif"], ["a.png"])
    with pytest.raises(DatasetError, match=r"share a name stem: a\.png / a\.tif"):
        load_dataset(root)


def test_empty_and_missing(make_pairs: MakePairs, tmp_path: Path) -> None:
    root = make_pairs([], [])
    with pytest.raises(DatasetError, match=re.escape(f"no image/mask pairs found in {root}")):
        load_dataset(root)
    (tmp_path / "bare").mkdir()
    with pytest.raises(DatasetError, match=r"expected manifest\.csv or the folders"):
        load_dataset(tmp_path / "bare")
    with pytest.raises(DatasetError, match="dataset folder not found"):
        load_dataset(tmp_path / "absent")


def test_manifest_with_split_group_and_extra_columns(make_pairs: MakePairs) -> None:
    root = make_pairs(["x (1).png", "y.png", "z.png"], ["x (1).png", "y.png", "z.png"])
    fields = ["image", "mask", "instances", "group", "split"]
    rows = [
        {"image": "images/z.png", "mask": "masks/z.png", "group": "he", "split": "test"},
        {"image": "images/x (1).png", "mask": "masks/x (1).png", "group": "fl", "split": "train"},
        {"image": "images/y.png", "mask": "masks/y.png", "instances": "i/y.png", "split": "val"},
    ]
    _write_manifest(root, rows, fields)
    dataset = load_dataset(root)
    assert [s.key for s in dataset.samples] == ["images/x (1).png", "images/y.png", "images/z.png"]
    assert dataset.samples[1].group is None and dataset.samples[1].split == "val"
    assert dataset.splits == ("train", "val", "test")
    assert dataset.groups == ("fl", "he")
    train = dataset.select(split="train")
    assert isinstance(train, Dataset) and len(train) == 1 and train.root == root
    assert [s.key for s in dataset.select(group="he")] == ["images/z.png"]
    assert len(dataset.select(split="test", group="he")) == 1
    assert len(dataset.select(split="test", group="fl")) == 0
    check_pairs(dataset, num_foreground=1)


def test_manifest_missing_file_names_row_and_path(make_pairs: MakePairs) -> None:
    root = make_pairs(["a.png"], ["a.png"])
    rows = [
        {"image": "images/a.png", "mask": "masks/a.png"},
        {"image": "images/gone.png", "mask": "masks/a.png"},
    ]
    _write_manifest(root, rows, ["image", "mask"])
    with pytest.raises(DatasetError, match=r"line 3: image file 'images/gone\.png' not found"):
        load_dataset(root)


def test_manifest_missing_column_lists_found(make_pairs: MakePairs) -> None:
    root = make_pairs(["a.png"], ["a.png"])
    _write_manifest(root, [{"img": "images/a.png", "label": "masks/a.png"}], ["img", "label"])
    with pytest.raises(DatasetError, match=r"missing column\(s\) image, mask.*found img, label"):
        load_dataset(root)


def test_manifest_bad_split(make_pairs: MakePairs) -> None:
    root = make_pairs(["a.png"], ["a.png"])
    rows = [{"image": "images/a.png", "mask": "masks/a.png", "split": "training"}]
    _write_manifest(root, rows, ["image", "mask", "split"])
    with pytest.raises(DatasetError, match=r"line 2: split 'training' is not one of train"):
        load_dataset(root)


def test_manifest_header_only_and_empty(make_pairs: MakePairs) -> None:
    root = make_pairs(["a.png"], ["a.png"])
    _write_manifest(root, [], ["image", "mask"])
    with pytest.raises(DatasetError, match="no image/mask pairs found"):
        load_dataset(root)
    (root / "manifest.csv").write_text("")
    with pytest.raises(DatasetError, match="no header row"):
        load_dataset(root)


def test_manifest_duplicate_image(make_pairs: MakePairs) -> None:
    root = make_pairs(["a.png"], ["a.png"])
    row = {"image": "images/a.png", "mask": "masks/a.png"}
    _write_manifest(root, [row, row], ["image", "mask"])
    with pytest.raises(DatasetError, match=r"more than once: images/a\.png"):
        load_dataset(root)


def test_check_pairs_reports_size_mismatch(make_pairs: MakePairs) -> None:
    root = make_pairs(["a.png", "b.png"], ["a.png", "b.png"])
    PILImage.fromarray(np.zeros((5, 5), np.uint8)).save(root / "masks" / "b.png")
    with pytest.raises(MaskError, match=r"b\.png: mask is 5x5 but the image is 6x4"):
        check_pairs(load_dataset(root), num_foreground=1)


@pytest.mark.shared_data
def test_shared_dsb2018_rows() -> None:
    if not (SHARED / "manifest.csv").is_file():
        pytest.skip(f"{SHARED} is not available")
    dataset = load_dataset(SHARED)
    assert len(dataset) > 3
    assert set(dataset.splits) <= {"train", "val", "test"}
    assert "fluorescence" in dataset.groups
    three = Dataset(dataset.root, dataset.samples[:3])
    check_pairs(three, num_foreground=1)
    assert all(s.key.startswith("images/") and s.mask.is_file() for s in three.samples)
