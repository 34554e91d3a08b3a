"""read_image / decode_image over every supported raster format and mode."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

from medloop.domain.image import Image
from medloop.io import decode_image, read_image, to_display_rgb

RNG = np.random.default_rng(0)
GRAY8 = RNG.integers(0, 256, (12, 10), dtype=np.uint8)
RGB8 = RNG.integers(0, 256, (12, 10, 3), dtype=np.uint8)
GRAY16 = RNG.integers(0, 65536, (12, 10), dtype=np.uint16)
RGB16 = RNG.integers(0, 65536, (12, 10, 3), dtype=np.uint16)


def test_png_gray_8bit(write_pil: Callable[..., Path]) -> None:
    image = read_image(write_pil(PILImage.fromarray(GRAY8), "g.png"))
    assert image.pixels.shape == (12, 10, 1)
    assert image.pixels.dtype == np.uint8
    np.testing.assert_array_equal(image.pixels[:, :, 0], GRAY8)
    assert image.source_format == "png"
    assert image.spacing is None
    assert image.metadata["mode"] == "L"
    assert image.metadata["bits"] == 8


def test_png_gray_16bit_keeps_full_range(write_pil: Callable[..., Path]) -> None:
    image = read_image(write_pil(PILImage.fromarray(GRAY16), "g16.png"))
    assert image.pixels.dtype == np.uint16
    np.testing.assert_array_equal(image.pixels[:, :, 0], GRAY16)
    assert image.metadata["bits"] == 16


def test_png_rgb(write_pil: Callable[..., Path]) -> None:
    image = read_image(write_pil(PILImage.fromarray(RGB8), "c.png"))
    assert image.pixels.shape == (12, 10, 3)
    np.testing.assert_array_equal(image.pixels, RGB8)
    assert image.metadata["original_channels"] == 3


def test_png_rgba_drops_alpha(write_pil: Callable[..., Path]) -> None:
    rgba = np.dstack([RGB8, np.full((12, 10), 7, np.uint8)])
    image = read_image(write_pil(PILImage.fromarray(rgba, "RGBA"), "c.png"))
    np.testing.assert_array_equal(image.pixels, RGB8)
    assert image.metadata == {"mode": "RGBA", "bits": 8, "original_channels": 4}


def test_png_la_drops_alpha(write_pil: Callable[..., Path]) -> None:
    la = np.dstack([GRAY8, np.full((12, 10), 9, np.uint8)])
    image = read_image(write_pil(PILImage.fromarray(la, "LA"), "la.png"))
    assert image.pixels.shape == (12, 10, 1)
    np.testing.assert_array_equal(image.pixels[:, :, 0], GRAY8)
    assert image.metadata["original_channels"] == 2


def test_png_colour_palette_expands_to_rgb(write_pil: Callable[..., Path]) -> None:
    pil = PILImage.fromarray(RGB8).quantize(colors=16)
    image = read_image(write_pil(pil, "p.png"))
    assert image.pixels.shape == (12, 10, 3)
    np.testing.assert_array_equal(image.pixels, np.asarray(pil.convert("RGB")))
    assert image.metadata["palette"] == "color"


def test_png_gray_palette_expands_to_gray(write_pil: Callable[..., Path]) -> None:
    pil = PILImage.fromarray(np.arange(12 * 10, dtype=np.uint8).reshape(12, 10) % 4, "P")
    pil.putpalette([0, 0, 0, 80, 80, 80, 160, 160, 160, 250, 250, 250])
    image = read_image(write_pil(pil, "pg.png"))
    assert image.pixels.shape == (12, 10, 1)
    assert set(np.unique(image.pixels).tolist()) == {0, 80, 160, 250}


def test_png_bilevel_becomes_0_255(write_pil: Callable[..., Path]) -> None:
    pil = PILImage.fromarray(GRAY8 > 127).convert("1")
    image = read_image(write_pil(pil, "b.png"))
    assert image.pixels.dtype == np.uint8
    np.testing.assert_array_equal(image.pixels[:, :, 0], np.where(GRAY8 > 127, 255, 0))
    assert image.metadata["bits"] == 1


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_jpeg(write_pil: Callable[..., Path], mode: str) -> None:
    smooth = np.tile(np.linspace(0, 255, 10, dtype=np.uint8), (12, 1))
    arr = smooth if mode == "L" else np.dstack([smooth] * 3)
    image = read_image(write_pil(PILImage.fromarray(arr, mode), "j.jpg", quality=95))
    assert image.source_format == "jpeg"
    assert image.pixels.shape == (12, 10, 1 if mode == "L" else 3)
    assert image.pixels.dtype == np.uint8
    assert np.abs(image.pixels.astype(int) - arr.reshape(image.pixels.shape)).mean() < 4


def test_jpeg_cmyk_becomes_rgb(write_pil: Callable[..., Path]) -> None:
    image = read_image(write_pil(PILImage.fromarray(RGB8).convert("CMYK"), "k.jpg"))
    assert image.pixels.shape == (12, 10, 3)
    assert image.metadata["mode"] == "CMYK"


def _tiff(tmp_path: Path, arr: np.ndarray, **kwargs: object) -> Path:
    path = tmp_path / "t.tif"
    tifffile.imwrite(path, arr, **kwargs)  # type: ignore[arg-type]
    return path


def test_tiff_gray_8_and_16bit(tmp_path: Path) -> None:
    eight = read_image(_tiff(tmp_path, GRAY8))
    np.testing.assert_array_equal(eight.pixels[:, :, 0], GRAY8)
    sixteen = read_image(_tiff(tmp_path, GRAY16))
    assert sixteen.pixels.dtype == np.uint16
    np.testing.assert_array_equal(sixteen.pixels[:, :, 0], GRAY16)
    assert sixteen.source_format == "tiff"


def test_tiff_16bit_rgb_keeps_precision(tmp_path: Path) -> None:
    image = read_image(_tiff(tmp_path, RGB16, photometric="rgb"))
    assert image.pixels.dtype == np.uint16
    np.testing.assert_array_equal(image.pixels, RGB16)
    assert image.metadata["bits"] == 16


def test_tiff_16bit_rgb_planar_separate(tmp_path: Path) -> None:
    planar = np.moveaxis(RGB16, -1, 0)
    image = read_image(_tiff(tmp_path, planar, photometric="rgb", planarconfig="separate"))
    np.testing.assert_array_equal(image.pixels, RGB16)


def test_tiff_float_gray_and_rgb(tmp_path: Path) -> None:
    gray = RNG.random((12, 10), dtype=np.float32) * 1000 - 500
    image = read_image(_tiff(tmp_path, gray))
    assert image.pixels.dtype == np.float32
    np.testing.assert_array_equal(image.pixels[:, :, 0], gray)
    rgb = RNG.random((12, 10, 3), dtype=np.float32)
    image = read_image(_tiff(tmp_path, rgb, photometric="rgb"))
    assert image.pixels.shape == (12, 10, 3)
    np.testing.assert_array_equal(image.pixels, rgb)


def test_tiff_rgba_8bit_via_pillow(tmp_path: Path) -> None:
    rgba = np.dstack([RGB8, np.full((12, 10), 255, np.uint8)])
    image = read_image(_tiff(tmp_path, rgba, photometric="rgb", extrasamples=["unassalpha"]))
    np.testing.assert_array_equal(image.pixels, RGB8)


def test_bmp(write_pil: Callable[..., Path]) -> None:
    image = read_image(write_pil(PILImage.fromarray(RGB8), "x.bmp"))
    assert image.source_format == "bmp"
    np.testing.assert_array_equal(image.pixels, RGB8)


def test_gif_first_frame(write_pil: Callable[..., Path]) -> None:
    first = PILImage.fromarray(np.full((12, 10), 200, np.uint8))
    second = PILImage.fromarray(np.full((12, 10), 30, np.uint8))
    path = write_pil(first, "a.gif", save_all=True, append_images=[second])
    image = read_image(path)
    assert image.source_format == "gif"
    assert image.pixels.shape == (12, 10, 1)
    assert np.all(image.pixels == 200)


def test_png_named_jpg_reads_as_png(write_pil: Callable[..., Path]) -> None:
    image = read_image(write_pil(PILImage.fromarray(GRAY16), "really_a_png.jpg", "PNG"))
    assert image.source_format == "png"
    np.testing.assert_array_equal(image.pixels[:, :, 0], GRAY16)


def test_file_without_extension(write_pil: Callable[..., Path]) -> None:
    image = read_image(write_pil(PILImage.fromarray(RGB8), "noext", "BMP"))
    assert image.source_format == "bmp"


def test_decode_image_matches_read_image(
    write_pil: Callable[..., Path], encode: Callable[..., bytes]
) -> None:
    data = encode(PILImage.fromarray(RGB8), "PNG")
    from_bytes = decode_image(data, name="upload.png")
    from_file = read_image(write_pil(PILImage.fromarray(RGB8), "f.png"))
    np.testing.assert_array_equal(from_bytes.pixels, from_file.pixels)


def test_display_uint8_passthrough() -> None:
    gray = Image(pixels=GRAY8[:, :, None])
    display = to_display_rgb(gray)
    assert display.shape == (12, 10, 3)
    assert display.dtype == np.uint8
    np.testing.assert_array_equal(display[:, :, 2], GRAY8)
    np.testing.assert_array_equal(to_display_rgb(Image(pixels=RGB8)), RGB8)


def test_display_percentile_window_for_uint16() -> None:
    arr = np.linspace(1000, 3000, 200 * 10).reshape(200, 10).astype(np.uint16)
    display = to_display_rgb(Image(pixels=arr[:, :, None]))
    assert display.dtype == np.uint8
    assert display.min() == 0 and display.max() == 255
    assert np.all(np.diff(display[:, 0, 0].astype(int)) >= 0)


def test_display_uses_dicom_window() -> None:
    arr = np.array([[-1000.0, 40.0, 100.0, 2000.0]], dtype=np.float32)[:, :, None]
    image = Image(pixels=arr, metadata={"WindowCenter": 40.0, "WindowWidth": 400.0})
    display = to_display_rgb(image)[0, :, 0]
    assert display.tolist() == [0, 128, 166, 255]


def test_display_constant_and_nan_images() -> None:
    constant = Image(pixels=np.full((3, 3, 1), 7, np.uint16))
    assert to_display_rgb(constant).shape == (3, 3, 3)
    with_nan = np.array([[np.nan, 0.0], [1.0, 2.0]], dtype=np.float32)[:, :, None]
    display = to_display_rgb(Image(pixels=with_nan))
    assert display[0, 0, 0] == 0 and display[1, 1, 0] == 255
