"""Bad input never escapes as a raw OSError/ValueError: always ImageReadError naming the file."""

from __future__ import annotations

import os
import struct
import time
import tracemalloc
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from medloop.errors import ImageReadError, InputError
from medloop.io import decode_image, read_image
from medloop.io._pillow import open_pillow

SAMPLE = np.random.default_rng(1).integers(0, 256, (64, 48, 3), dtype=np.uint8)


def test_random_bytes_are_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "noise.png"
    path.write_bytes(np.random.default_rng(2).bytes(4096))
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert (
        str(info.value)
        == f"{path}: not a supported image (PNG, JPEG, TIFF, BMP, GIF, DICOM, NIfTI, NRRD)"
    )


def test_text_is_not_an_image() -> None:
    with pytest.raises(ImageReadError, match=r"notes\.txt: not a supported image"):
        decode_image(b"patient notes\n" * 50, name="notes.txt")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty\.png: file is empty"):
        read_image(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match=r"missing\.png: cannot read file"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ImageReadError, match="cannot read file"):
        read_image(tmp_path)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF", "TIFF"])
def test_truncated_half(encode: Callable[..., bytes], fmt: str) -> None:
    data = encode(PILImage.fromarray(SAMPLE), fmt)
    with pytest.raises(ImageReadError, match=r"cut\.img: truncated or corrupt") as info:
        decode_image(data[: len(data) // 2], name="cut.img")
    assert info.value.__cause__ is not None


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF", "TIFF"])
def test_any_cut_or_damage_gives_image_read_error(encode: Callable[..., bytes], fmt: str) -> None:
    data = encode(PILImage.fromarray(SAMPLE), fmt)
    variants = [data[:n] for n in (2, 9, 20, 40, 100, len(data) - 1)]
    damaged = bytearray(data)
    damaged[30:60] = b"\xff" * 30
    variants.append(bytes(damaged))
    for variant in variants:
        try:
            decode_image(variant, name="bad")
        except InputError as err:
            assert "bad" in str(err)


def _png_header_only(width: int, height: int) -> bytes:
    payload = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    crc = zlib.crc32(b"IHDR" + payload) & 0xFFFFFFFF
    ihdr = struct.pack(">I", len(payload)) + b"IHDR" + payload + struct.pack(">I", crc)
    idat = zlib.compress(b"")
    idat_crc = zlib.crc32(b"IDAT" + idat) & 0xFFFFFFFF
    chunk = struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", idat_crc)
    return b"\x89PNG\r\n\x1a\n" + ihdr + chunk


def test_zero_size_image() -> None:
    with pytest.raises(ImageReadError, match=r"zero\.png"):
        decode_image(_png_header_only(0, 10), name="zero.png")


def test_small_image_over_max_pixels(encode: Callable[..., bytes]) -> None:
    data = encode(PILImage.fromarray(SAMPLE), "PNG")
    with pytest.raises(ImageReadError, match=r"small\.png: image is 48x64 = 3,072 pixels"):
        decode_image(data, name="small.png", max_pixels=3000)
    assert decode_image(data, max_pixels=3072).shape == (64, 48)


def test_header_claiming_huge_size_fails_before_decoding() -> None:
    with pytest.raises(ImageReadError, match="100000x100000"):
        decode_image(_png_header_only(100_000, 100_000), name="claims.png", max_pixels=10**12)


def test_jpeg_header_claiming_huge_size(encode: Callable[..., bytes]) -> None:
    data = bytearray(encode(PILImage.fromarray(SAMPLE), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60_000, 50_000)
    with pytest.raises(ImageReadError, match=r"huge\.jpg: .*50000x60000"):
        decode_image(bytes(data), name="huge.jpg")


def test_real_bilevel_bomb_fails_fast(bilevel_png: Callable[[int, int], bytes]) -> None:
    data = bilevel_png(20_000, 20_000)
    assert len(data) < 200_000  # 400 megapixels in a few kB
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(
            ImageReadError,
            match=r"bomb\.png: image is 20000x20000 = 400,000,000 pixels, over the limit",
        ):
            decode_image(data, name="bomb.png")
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 20 * 1024 * 1024


def test_bomb_between_pillow_limits_names_dimensions(
    bilevel_png: Callable[[int, int], bytes],
) -> None:
    data = bilevel_png(12_000, 12_000)  # over Pillow's warning threshold, under its error one
    filters_before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageReadError, match="12000x12000 = 144,000,000 pixels"):
            decode_image(data, name="big.png")
        # a caller's larger limit is honoured: the header opens without decoding
        opened = open_pillow(data, "big.png", max_pixels=200_000_000)
        assert opened.size == (12_000, 12_000)
    assert not [w for w in caught if issubclass(w.category, PILImage.DecompressionBombWarning)]
    assert warnings.filters == filters_before


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_no_raw_errors_for_garbage_after_magic() -> None:
    for magic in (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"BM", b"GIF89a"):
        for tail in (b"", os.urandom(16), os.urandom(2000)):
            with pytest.raises(ImageReadError, match="junk"):
                decode_image(magic + tail, name="junk")
