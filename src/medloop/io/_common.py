"""Shared decoding helpers: format sniffing by magic bytes, size limits, dtype rules."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import numpy as np

from medloop.errors import ImageReadError, InputError

__all__ = [
    "UNSUPPORTED_MESSAGE",
    "Format",
    "as_hwc",
    "check_dimensions",
    "decode_guard",
    "normalize_dtype",
    "sniff_format",
]

Format = Literal["png", "jpeg", "tiff", "bmp", "gif", "dicom"]

UNSUPPORTED_MESSAGE = "not a supported image (PNG, JPEG, TIFF, BMP, GIF, DICOM, NIfTI, NRRD)"

_MAGIC: tuple[tuple[bytes, Format], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),  # BigTIFF
    (b"MM\x00+", "tiff"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
)


def sniff_format(data: bytes) -> Format | None:
    """The format of an encoded image from its first bytes.

    Args:
        data: the file content.

    Returns:
        The format name, or ``None`` when no known signature matches (the caller
        may still try DICOM without its 128-byte preamble).
    """
    if len(data) >= 132 and data[128:132] == b"DICM":
        return "dicom"  # first: the 128-byte preamble may itself look like a TIFF header
    for magic, fmt in _MAGIC:
        if data.startswith(magic):
            return fmt
    return None


@contextlib.contextmanager
def decode_guard(name: str, what: str = "image") -> Iterator[None]:
    """Turn any decoder failure into an :class:`ImageReadError` naming the file.

    Decoders raise a zoo of exceptions on bad input (``OSError``, ``ValueError``,
    ``SyntaxError``, ``struct.error``, ``zlib.error``, ``EOFError`` ...). Inside
    this block all of them become ``ImageReadError("<name>: truncated or corrupt
    <what> (...)")`` chained with ``from``. Errors that are already
    :class:`~medloop.errors.InputError` pass through; ``MemoryError`` too.
    """
    try:
        yield
    except (InputError, MemoryError):
        raise
    except Exception as err:
        detail = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        reason = f"{type(err).__name__}: {detail}" if detail else type(err).__name__
        if type(err).__name__ == "UnidentifiedImageError":  # its message is a repr
            reason = "unreadable header"
        raise ImageReadError(f"{name}: truncated or corrupt {what} ({reason})") from err


def check_dimensions(name: str, width: int, height: int, max_pixels: int) -> None:
    """Refuse empty or absurdly large images before any pixel is decoded.

    Args:
        name: file name for the message.
        width: columns, from the file header.
        height: rows, from the file header.
        max_pixels: the largest ``width * height`` accepted.

    Raises:
        ImageReadError: zero size, or more than ``max_pixels`` pixels.
    """
    if width <= 0 or height <= 0:
        raise ImageReadError(f"{name}: image has zero size ({width}x{height})")
    if width * height > max_pixels:
        raise ImageReadError(
            f"{name}: image is {width}x{height} = {width * height:,} pixels, over the limit "
            f"of {max_pixels:,} (possible decompression bomb)"
        )


def normalize_dtype(arr: np.ndarray, name: str) -> np.ndarray:
    """Bring decoded pixels to one of the dtypes an :class:`Image` holds.

    uint8 and uint16 stay; bool becomes uint8 0/255; other integers become uint16
    when every value fits ``0..65535``, else float32; floats become float32.

    Args:
        arr: decoded pixels of any shape.
        name: file name for the message.

    Returns:
        An array of dtype uint8, uint16 or float32, native byte order.
    """
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * np.uint8(255)
    if arr.dtype.kind == "u" and arr.dtype.itemsize <= 2:
        return arr.astype(np.uint8 if arr.dtype.itemsize == 1 else np.uint16, copy=False)
    if arr.dtype.kind in "iu":
        if arr.size and int(arr.min()) >= 0 and int(arr.max()) <= 65535:
            return arr.astype(np.uint16)
        return arr.astype(np.float32)
    if arr.dtype.kind == "f":
        return arr.astype(np.float32, copy=False)
    raise ImageReadError(f"{name}: unsupported pixel type {arr.dtype}")


def as_hwc(arr: np.ndarray, name: str) -> np.ndarray:
    """Shape pixels as ``(H, W, 1)`` or ``(H, W, 3)``, dropping an alpha channel.

    Args:
        arr: ``(H, W)``, ``(H, W, 1)``, ``(H, W, 2)`` (gray + alpha),
            ``(H, W, 3)`` or ``(H, W, 4)`` (RGB + alpha).
        name: file name for the message.

    Returns:
        A C-contiguous ``(H, W, 1|3)`` array.
    """
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise ImageReadError(f"{name}: unsupported pixel layout {arr.shape}")
    if arr.shape[2] == 2:
        arr = arr[:, :, :1]
    elif arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageReadError(f"{name}: image has zero size ({arr.shape[1]}x{arr.shape[0]})")
    return np.ascontiguousarray(arr)
