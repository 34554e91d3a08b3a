"""Shared fixtures for the io tests: files written to tmp_path on demand."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image as PILImage
from pydicom.data import get_testdata_file


def _encode(image: PILImage.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


@pytest.fixture
def encode() -> Callable[..., bytes]:
    """``encode(pil_image, "PNG", **save_params) -> bytes``."""
    return _encode


@pytest.fixture
def write_pil(tmp_path: Path) -> Callable[..., Path]:
    """``write_pil(pil_image, "name.ext", fmt=None, **save_params) -> Path`` under tmp_path."""

    def write(image: PILImage.Image, name: str, fmt: str | None = None, **params: Any) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt is None:
            image.save(path, **params)
        else:
            path.write_bytes(_encode(image, fmt, **params))
        return path

    return write


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _bilevel_png(width: int, height: int) -> bytes:
    """A valid all-black 1-bit PNG built row by row (tiny on disk, huge decoded)."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


@pytest.fixture
def bilevel_png() -> Callable[[int, int], bytes]:
    """``bilevel_png(width, height) -> bytes``: a real PNG of that size."""
    return _bilevel_png


def _testdata(name: str) -> Path:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not available offline")
    return Path(str(path))


@pytest.fixture
def dicom_file() -> Callable[[str], Path]:
    """``dicom_file("CT_small.dcm") -> Path`` of a bundled pydicom test file (or skip)."""
    return _testdata


@pytest.fixture
def ct_dataset() -> pydicom.Dataset:
    """A fresh, editable copy of pydicom's CT_small.dcm dataset."""
    return pydicom.dcmread(_testdata("CT_small.dcm"))


@pytest.fixture
def make_pairs(tmp_path: Path) -> Callable[..., Path]:
    """``make_pairs(images=[...], masks=[...], root="ds") -> root``: tiny PNG/any-format files.

    Every file is a valid 6x4 image (gray for images, 0/255 for masks); the
    extension of each name picks its format, a name without one gets PNG bytes.
    """

    def make(images: list[str], masks: list[str], root: str = "ds") -> Path:
        base = tmp_path / root
        for folder, names, fill in (("images", images, 100), ("masks", masks, 255)):
            (base / folder).mkdir(parents=True, exist_ok=True)
            arr = np.zeros((4, 6), dtype=np.uint8)
            arr[1:3, 2:5] = fill
            for name in names:
                path = base / folder / name
                suffix = path.suffix.lower()
                fmt = {".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".gif": "GIF"}.get(
                    suffix, "PNG"
                )
                path.write_bytes(_encode(PILImage.fromarray(arr), fmt))
        return base

    return make
