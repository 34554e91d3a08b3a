"""TIFF via tifffile, for what Pillow cannot decode faithfully.

Pillow reads 16-bit RGB TIFFs as 8-bit (it drops the low byte) and cannot open
float RGB at all; tifffile reads both. Pillow stays the first choice for the
rest because it handles bilevel, palette and MINISWHITE images, and JPEG/LZW
compression without extra packages.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from typing import Any

import numpy as np
import tifffile

from medloop.errors import ImageReadError
from medloop.io._common import decode_guard, normalize_dtype

__all__ = ["TiffHeader", "decode_tiff", "read_tiff_header"]


@dataclass(frozen=True)
class TiffHeader:
    """Facts about the first page, read without decoding any pixel."""

    width: int
    height: int
    samples: int
    bits: int
    float_samples: bool

    @property
    def needs_tifffile(self) -> bool:
        """True when Pillow would lose precision or fail (multi-sample, > 8 bits)."""
        return self.samples > 1 and (self.bits > 8 or self.float_samples)


def read_tiff_header(data: bytes) -> TiffHeader | None:
    """Read the first page's geometry; ``None`` when tifffile cannot parse it."""
    try:
        with tifffile.TiffFile(BytesIO(data)) as tif:
            page = tif.pages.first
            return TiffHeader(
                width=int(page.imagewidth),
                height=int(page.imagelength),
                samples=int(page.samplesperpixel),
                bits=int(page.bitspersample),
                float_samples=int(page.sampleformat) == 3,
            )
    except Exception:  # any parse failure: let Pillow try and report
        return None


def _to_yxs(arr: np.ndarray, axes: str, name: str) -> np.ndarray:
    if axes in ("YX", "YXS"):
        return arr
    if axes == "SYX":
        return np.moveaxis(arr, 0, -1)
    raise ImageReadError(f"{name}: unsupported TIFF layout (axes {axes!r}, shape {arr.shape})")


def decode_tiff(data: bytes, name: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Decode the first page of a TIFF with tifffile.

    Args:
        data: the encoded file (its size already checked by the caller).
        name: file name for messages.

    Returns:
        ``(pixels, metadata)``: pixels ``(H, W)`` or ``(H, W, S)`` of dtype
        uint8, uint16 or float32; metadata holds ``mode``, ``bits`` and
        ``original_channels``.

    Raises:
        ImageReadError: corrupt data, missing codec or unsupported photometric.
    """
    with decode_guard(name, "TIFF"), tifffile.TiffFile(BytesIO(data)) as tif:
        page = tif.pages.first
        photometric = tifffile.PHOTOMETRIC(page.photometric)
        arr = _to_yxs(np.asarray(page.asarray()), str(page.axes), name)
        samples = int(page.samplesperpixel)
        bits = int(page.bitspersample)
        if photometric == tifffile.PHOTOMETRIC.MINISWHITE and arr.dtype.kind in "ui":
            arr = np.iinfo(arr.dtype).max - arr
        elif photometric == tifffile.PHOTOMETRIC.PALETTE and page.colormap is not None:
            arr = np.moveaxis(np.asarray(page.colormap)[:, arr], 0, -1)
            samples = 3
        elif photometric not in (
            tifffile.PHOTOMETRIC.MINISBLACK,
            tifffile.PHOTOMETRIC.MINISWHITE,
            tifffile.PHOTOMETRIC.RGB,
        ):
            raise ImageReadError(f"{name}: unsupported TIFF photometric {photometric.name}")
    kind = "F" if arr.dtype.kind == "f" else str(bits)
    mode = ("RGB" if samples >= 3 else "L") + f";{kind}"
    return normalize_dtype(arr, name), {"mode": mode, "bits": bits, "original_channels": samples}
