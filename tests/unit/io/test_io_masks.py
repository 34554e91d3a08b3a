"""Masks: accepted encodings, label validation, and the messages of the refusals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

from medloop.errors import ImageReadError, MaskError
from medloop.io import (
    decode_mask,
    encode_label_map_png,
    mask_from_array,
    read_mask,
    write_label_map_png,
)

LABELS = np.array([[0, 0, 1, 1], [0, 2, 2, 1], [0, 0, 0, 2]], dtype=np.uint8)


def test_binary_0_255_becomes_0_1(write_pil: Callable[..., Path]) -> None:
    path = write_pil(PILImage.fromarray(LABELS.astype(bool).astype(np.uint8) * 255), "m.png")
    mask = read_mask(path, num_foreground=1)
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, LABELS.astype(bool))


def test_all_255_mask_is_all_foreground() -> None:
    mask = mask_from_array(np.full((2, 2), 255, np.uint8), name="m", num_foreground=3)
    assert mask.tolist() == [[1, 1], [1, 1]]


def test_255_is_a_label_when_the_project_has_255_labels() -> None:
    arr = np.array([[0, 255]], np.uint8)
    assert mask_from_array(arr, name="m", num_foreground=255).tolist() == [[0, 255]]


def test_label_map(write_pil: Callable[..., Path]) -> None:
    mask = read_mask(write_pil(PILImage.fromarray(LABELS), "lab.png"), num_foreground=2)
    np.testing.assert_array_equal(mask, LABELS)


def test_empty_mask_is_fine() -> None:
    mask = mask_from_array(np.zeros((3, 4), np.uint8), name="m", num_foreground=1)
    assert mask.shape == (3, 4) and not mask.any()


def test_out_of_range_labels_are_listed(write_pil: Callable[..., Path]) -> None:
    arr = LABELS.copy()
    arr[0, 0], arr[2, 3] = 7, 3
    path = write_pil(PILImage.fromarray(arr), "mask.png")
    with pytest.raises(MaskError) as info:
        read_mask(path, num_foreground=2)
    assert str(info.value) == (f"{path}: label values [3, 7] are outside the project's labels 0..2")


def test_many_bad_values_are_abbreviated() -> None:
    arr = np.arange(100, dtype=np.uint8).reshape(10, 10)
    with pytest.raises(MaskError, match=r"\[2, 3, .*11, \.\.\. \(98 values\)\]"):
        mask_from_array(arr, name="m.png", num_foreground=1)


def test_size_mismatch_names_both_sizes(write_pil: Callable[..., Path]) -> None:
    path = write_pil(PILImage.fromarray(LABELS), "small.png")
    with pytest.raises(MaskError) as info:
        read_mask(path, num_foreground=2, expected_shape=(5, 4))
    message = str(info.value)
    assert str(path) in message
    assert "mask is 4x3" in message and "image is 4x5" in message


def test_rgb_mask_with_equal_channels_is_folded(write_pil: Callable[..., Path]) -> None:
    rgb = np.dstack([LABELS] * 3)
    mask = read_mask(write_pil(PILImage.fromarray(rgb), "rgb.png"), num_foreground=2)
    np.testing.assert_array_equal(mask, LABELS)
    binary = (LABELS > 0).astype(np.uint8) * 255
    rgba = np.dstack([binary] * 3 + [np.full_like(LABELS, 255)])
    mask = read_mask(write_pil(PILImage.fromarray(rgba, "RGBA"), "rgba.png"), num_foreground=1)
    np.testing.assert_array_equal(mask, LABELS.astype(bool))


def test_rgb_mask_with_colours_is_rejected(write_pil: Callable[..., Path]) -> None:
    rgb = np.dstack([LABELS * 100, LABELS * 0, LABELS * 50]).astype(np.uint8)
    path = write_pil(PILImage.fromarray(rgb), "colour.png")
    with pytest.raises(MaskError, match=r"colour\.png: colour mask"):
        read_mask(path, num_foreground=2)


def test_palette_label_map_uses_indices(write_pil: Callable[..., Path]) -> None:
    pil = PILImage.fromarray(LABELS, "P")
    pil.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0])  # VOC-style colours
    mask = read_mask(write_pil(pil, "voc.png"), num_foreground=2)
    np.testing.assert_array_equal(mask, LABELS)


def test_palette_gray_label_map_uses_indices(write_pil: Callable[..., Path]) -> None:
    pil = PILImage.fromarray(LABELS, "P")
    pil.putpalette([0, 0, 0, 100, 100, 100, 200, 200, 200])
    mask = read_mask(write_pil(pil, "graypal.png"), num_foreground=2)
    np.testing.assert_array_equal(mask, LABELS)


def test_palette_black_white_mask_uses_gray_values(write_pil: Callable[..., Path]) -> None:
    pil = PILImage.fromarray((LABELS == 0).astype(np.uint8), "P")  # index 0 = foreground
    pil.putpalette([255, 255, 255, 0, 0, 0])  # ... drawn white
    mask = read_mask(write_pil(pil, "bw.png"), num_foreground=1)
    np.testing.assert_array_equal(mask, LABELS.astype(bool))


def test_gif_mask(write_pil: Callable[..., Path]) -> None:
    pil = PILImage.fromarray(LABELS.astype(bool).astype(np.uint8) * 255)
    mask = read_mask(write_pil(pil, "m.gif"), num_foreground=1)
    np.testing.assert_array_equal(mask, LABELS.astype(bool))


def test_16bit_and_bilevel_masks(write_pil: Callable[..., Path], tmp_path: Path) -> None:
    sixteen = write_pil(PILImage.fromarray(LABELS.astype(np.uint16)), "m16.png")
    np.testing.assert_array_equal(read_mask(sixteen, num_foreground=2), LABELS)
    bilevel = write_pil(PILImage.fromarray(LABELS > 0).convert("1"), "m1.png")
    np.testing.assert_array_equal(read_mask(bilevel, num_foreground=1), LABELS > 0)
    tifffile.imwrite(tmp_path / "m.tif", LABELS.astype(np.uint16))
    np.testing.assert_array_equal(read_mask(tmp_path / "m.tif", num_foreground=2), LABELS)


def test_float_masks() -> None:
    whole = LABELS.astype(np.float32)
    np.testing.assert_array_equal(mask_from_array(whole, name="f", num_foreground=2), LABELS)
    with pytest.raises(MaskError, match=r"f\.tif: mask has non-integer values \(e\.g\. 0\.5\)"):
        mask_from_array(whole * 0.5, name="f.tif", num_foreground=2)
    with pytest.raises(MaskError, match="non-integer"):
        mask_from_array(np.array([[np.nan, 1.0]]), name="f.tif", num_foreground=2)


def test_bool_and_negative_arrays() -> None:
    mask = mask_from_array(LABELS > 0, name="b", num_foreground=1)
    assert mask.dtype == np.uint8 and mask.max() == 1
    with pytest.raises(MaskError, match=r"\[-1\]"):
        mask_from_array(np.array([[0, -1]], np.int16), name="neg", num_foreground=1)


def test_bad_layouts() -> None:
    with pytest.raises(MaskError, match="must be"):
        mask_from_array(np.zeros((2, 2, 2, 2)), name="m", num_foreground=1)
    with pytest.raises(MaskError, match="zero size"):
        mask_from_array(np.zeros((0, 3), np.uint8), name="m", num_foreground=1)
    with pytest.raises(ValueError, match="num_foreground"):
        mask_from_array(LABELS, name="m", num_foreground=0)


def test_jpeg_mask_gets_a_hint(write_pil: Callable[..., Path]) -> None:
    noisy = np.random.default_rng(3).integers(0, 256, (32, 32), dtype=np.uint8)
    path = write_pil(PILImage.fromarray(noisy), "m.jpg", quality=50)
    with pytest.raises(MaskError, match="JPEG is lossy"):
        read_mask(path, num_foreground=1)


def test_unreadable_masks(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="cannot read file"):
        read_mask(tmp_path / "nope.png", num_foreground=1)
    with pytest.raises(ImageReadError, match="file is empty"):
        decode_mask(b"", name="e.png", num_foreground=1)
    with pytest.raises(ImageReadError, match="not a supported image"):
        decode_mask(b"0,1,0\n" * 20, name="m.csv", num_foreground=1)


def test_label_map_png_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    write_label_map_png(path, LABELS)
    with PILImage.open(path) as pil:
        assert pil.mode == "L"
    np.testing.assert_array_equal(read_mask(path, num_foreground=2), LABELS)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    data = encode_label_map_png(LABELS)
    assert data.startswith(b"\x89PNG")
    np.testing.assert_array_equal(decode_mask(data, name="b", num_foreground=2), LABELS)


def test_label_map_png_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match=r"0\.\.255"):
        encode_label_map_png(np.array([[0, 300]]))
    with pytest.raises(ValueError, match="integer"):
        encode_label_map_png(np.zeros((2, 2, 3), np.uint8))
