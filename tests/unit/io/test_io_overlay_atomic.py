"""Overlays, PNG encoding and crash-safe writes."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from medloop.domain.image import Image
from medloop.durable import atomic_write_bytes, fsync_dir, sha256_bytes, sha256_file
from medloop.errors import ConfigError
from medloop.io import encode_png, read_image, render_overlay, write_overlay_png

GRAY = Image(pixels=np.full((20, 30, 1), 100, np.uint8))
LABELS = np.zeros((20, 30), np.uint8)
LABELS[5:15, 5:15] = 1
LABELS[2:8, 20:28] = 2
COLORS = ["#ff0000", "#00ff00"]


def test_overlay_shape_colours_and_outline() -> None:
    out = render_overlay(GRAY, LABELS, COLORS, alpha=0.5)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() == [100, 100, 100]  # background untouched
    assert out[10, 10].tolist() == [178, 50, 50]  # interior: half red
    assert out[5, 10].tolist() == [255, 0, 0]  # contour: solid red
    assert out[4, 24].tolist() == [50, 178, 50]  # second label, green
    assert out[2, 24].tolist() == [0, 255, 0]


def test_overlay_without_outline_and_with_uint16_image() -> None:
    image = Image(pixels=np.linspace(0, 4000, 600).reshape(20, 30, 1).astype(np.uint16))
    out = render_overlay(image, LABELS, COLORS, alpha=0.45, outline=False)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    assert out[5, 10, 0] > out[5, 10, 1]  # red tint but not solid
    assert out[5, 10, 0] != 255


def test_overlay_refusals() -> None:
    with pytest.raises(ValueError, match="do not match"):
        render_overlay(GRAY, LABELS[:10], COLORS)
    with pytest.raises(ValueError, match=r"\[2\] have no colour"):
        render_overlay(GRAY, LABELS, COLORS[:1])
    with pytest.raises(ConfigError, match="'red'"):
        render_overlay(GRAY, LABELS, ["red", "#00ff00"])
    with pytest.raises(ValueError, match="alpha"):
        render_overlay(GRAY, LABELS, COLORS, alpha=1.5)


def test_write_overlay_png(tmp_path: Path) -> None:
    path = tmp_path / "overlay.png"
    write_overlay_png(path, GRAY, LABELS, COLORS)
    image = read_image(path)
    assert image.pixels.shape == (20, 30, 3)
    np.testing.assert_array_equal(image.pixels, render_overlay(GRAY, LABELS, COLORS))
    assert [p.name for p in tmp_path.iterdir()] == ["overlay.png"]


def test_encode_png() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    data = encode_png(rgb)
    assert data.startswith(b"\x89PNG")
    with PILImage.open(io.BytesIO(data)) as pil:
        np.testing.assert_array_equal(np.asarray(pil), rgb)
    with pytest.raises(ValueError, match="uint8"):
        encode_png(rgb.astype(np.float32))


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "file.bin"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert os.listdir(tmp_path) == ["file.bin"]


def test_atomic_write_failure_keeps_old_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["file.bin"]


def test_atomic_write_into_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        atomic_write_bytes(tmp_path / "nope" / "f.bin", b"x")
    assert os.listdir(tmp_path) == []


def test_hashes(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # spans several 1 MiB chunks
    path = tmp_path / "blob"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_file(path) == expected
    assert sha256_bytes(data) == expected
    fsync_dir(tmp_path)
