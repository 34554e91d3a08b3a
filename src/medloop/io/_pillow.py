"""Pillow decoding: lazy open with a size check first, then mode-by-mode conversion."""

from __future__ import annotations

import contextlib
import struct
import warnings
from collections.abc import Iterator
from io import BytesIO
from typing import Any

import numpy as np
from PIL import Image as PILImage

from medloop.errors import ImageReadError
from medloop.io._common import check_dimensions, decode_guard, normalize_dtype

__all__ = ["open_pillow", "peek_size", "pillow_pixels", "without_bomb_warning"]

_TO_RGB_MODES = frozenset({"CMYK", "YCbCr", "LAB", "HSV", "RGBa", "RGBX"})
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


@contextlib.contextmanager
def without_bomb_warning() -> Iterator[None]:
    """Silence Pillow's DecompressionBombWarning for this block only.

    Only used once :func:`check_dimensions` has accepted the size (or to re-read
    a header whose size it is about to check): from then on our own
    ``max_pixels`` is the limit, not Pillow's global ``MAX_IMAGE_PIXELS``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        yield


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    offset = 2
    while offset + 9 <= len(data):
        if data[offset] != 0xFF:
            return None
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
        elif marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
            return int(width), int(height)
        elif marker in (0x01, *range(0xD0, 0xD9)):  # markers without a length
            offset += 2
        else:
            offset += 2 + struct.unpack(">H", data[offset + 2 : offset + 4])[0]
    return None


def peek_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a PNG, GIF, BMP or JPEG header, for error messages only."""
    try:
        if data.startswith(b"\x89PNG") and len(data) >= 24:
            width, height = struct.unpack(">II", data[16:24])
        elif data.startswith(b"GIF") and len(data) >= 10:
            width, height = struct.unpack("<HH", data[6:10])
        elif data.startswith(b"BM") and len(data) >= 26:
            width, height = struct.unpack("<ii", data[18:26])
        elif data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
        else:
            return None
    except struct.error:
        return None
    return abs(int(width)), abs(int(height))


def open_pillow(data: bytes, name: str, max_pixels: int, what: str = "image") -> PILImage.Image:
    """Open an encoded image lazily (header only) and check its size.

    Pillow's DecompressionBombWarning is escalated to an error for the open
    (locally: the global warning filters are restored afterwards). When it
    fires, the header is read again with the warning silenced and
    ``max_pixels`` decides, so that a caller's larger limit is honoured.

    Args:
        data: the encoded file.
        name: file name for messages.
        max_pixels: largest ``width * height`` accepted.
        what: what to call the data in messages (e.g. ``"PNG"``, ``"mask"``).

    Returns:
        An opened, not yet decoded, Pillow image.

    Raises:
        ImageReadError: unreadable header, zero size or too many pixels.
    """
    with decode_guard(name, what):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", PILImage.DecompressionBombWarning)
                image = PILImage.open(BytesIO(data))
        except PILImage.DecompressionBombWarning:
            with without_bomb_warning():
                image = PILImage.open(BytesIO(data))
        except PILImage.DecompressionBombError as err:
            size = peek_size(data)
            if size is not None:  # the usual message when our own limit is the lower one
                check_dimensions(name, size[0], size[1], max_pixels)
            dims = f"{size[0]}x{size[1]} = {size[0] * size[1]:,} pixels, " if size else ""
            raise ImageReadError(
                f"{name}: image is too large to decode safely ({dims}over Pillow's limit of "
                f"{2 * (PILImage.MAX_IMAGE_PIXELS or 0):,} pixels)"
            ) from err
    width, height = image.size
    check_dimensions(name, int(width), int(height), max_pixels)
    return image


def _palette_pixels(image: PILImage.Image) -> tuple[np.ndarray, dict[str, Any]]:
    """Expand a palette image to RGB, or to gray when every used entry is gray."""
    indices = np.asarray(image)
    if indices.ndim == 3:  # PA: index plus alpha
        indices = indices[:, :, 0]
    raw = image.getpalette(rawmode="RGB") or []
    palette = np.zeros((256, 3), dtype=np.uint8)
    entries = np.asarray(raw, dtype=np.uint8).reshape(-1, 3)[:256]
    palette[: len(entries)] = entries
    used = palette[np.unique(indices)]
    gray = bool(np.all(used[:, 0] == used[:, 1]) and np.all(used[:, 1] == used[:, 2]))
    pixels = palette[indices, 0] if gray else palette[indices]
    return pixels, {"palette": "gray" if gray else "color"}


def pillow_pixels(
    image: PILImage.Image, name: str, what: str = "image"
) -> tuple[np.ndarray, dict[str, Any]]:
    """Decode an opened Pillow image to pixels plus facts about its encoding.

    Args:
        image: an image from :func:`open_pillow` (first frame of a GIF/TIFF).
        name: file name for messages.
        what: what to call the data in messages (e.g. ``"PNG"``).

    Returns:
        ``(pixels, metadata)``: pixels ``(H, W)`` or ``(H, W, 2..4)`` (alpha not
        yet dropped) of dtype uint8, uint16 or float32; metadata holds ``mode``,
        ``bits`` and ``original_channels``.

    Raises:
        ImageReadError: truncated or corrupt data, or an unsupported mode.
    """
    mode = image.mode
    meta: dict[str, Any] = {"mode": mode, "original_channels": len(image.getbands())}
    with decode_guard(name, what), without_bomb_warning():
        image.load()
        if mode == "1":
            pixels = np.asarray(image, dtype=np.bool_)
            meta["bits"] = 1
        elif mode in ("P", "PA"):
            pixels, extra = _palette_pixels(image)
            meta.update(extra, bits=8)
        elif mode in ("L", "LA", "RGB", "RGBA"):
            pixels = np.asarray(image)
            meta["bits"] = 8
        elif mode == "La":
            pixels = np.asarray(image.convert("LA"))
            meta["bits"] = 8
        elif mode in _TO_RGB_MODES:
            pixels = np.asarray(image.convert("RGB"))
            meta["bits"] = 8
        elif mode.startswith("I;16"):
            pixels = np.asarray(image)
            meta["bits"] = 16
        elif mode in ("I", "F"):
            pixels = np.asarray(image)
            meta["bits"] = 32
        else:
            raise ImageReadError(f"{name}: unsupported image mode {mode!r}")
        orientation = image.getexif().get(0x0112)
        if orientation not in (None, 1):
            meta["exif_orientation"] = int(orientation)  # recorded, not applied
    return normalize_dtype(pixels, name), meta
