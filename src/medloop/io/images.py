"""Read any supported image or volume into an :class:`~medloop.domain.image.Image`.

The format is detected from the content (magic bytes), never from the file
extension: a PNG named ``.jpg`` reads as a PNG. Supported: PNG, JPEG, TIFF, BMP,
GIF (first frame) through Pillow, TIFFs Pillow cannot read faithfully (16-bit
RGB, float RGB) through tifffile, and DICOM (single- and multi-frame, one
frame per read) through pydicom; NIfTI and NRRD volumes through
:mod:`medloop.io.volumes` (``max_pixels`` then bounds the voxels).

Every failure is an :class:`~medloop.errors.ImageReadError` whose message names
the file; the image size is checked from the header before any pixel is decoded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medloop.domain.image import Image
from medloop.errors import ImageReadError
from medloop.io._common import UNSUPPORTED_MESSAGE, as_hwc, check_dimensions, sniff_format
from medloop.io._dicom import decode_dicom, dicom_frame_count
from medloop.io._pillow import open_pillow, pillow_pixels
from medloop.io._tiff import decode_tiff, read_tiff_header
from medloop.io.volumes import decode_volume, sniff_volume

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "decode_image",
    "dicom_frames",
    "image_frames",
    "read_image",
]

DEFAULT_MAX_PIXELS = 100_000_000


def read_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, frame: int = 0) -> Image:
    """Read an image file.

    Args:
        path: the file; its extension is ignored.
        max_pixels: largest ``width * height`` accepted (decompression-bomb guard).
        frame: which frame of a multi-frame DICOM image, from 0 (see
            :func:`dicom_frames`); every other format has only frame 0.

    Returns:
        The image: pixels ``(H, W, 1)`` or ``(H, W, 3)``, uint8/uint16 as in the
        source, float32 for float sources and rescaled DICOM.

    Raises:
        ImageReadError: the file is missing or unreadable, not a supported image,
            truncated, corrupt, empty or too large; or it has no such frame.
    """
    return decode_image(_read_bytes(path), name=str(path), max_pixels=max_pixels, frame=frame)


def _read_bytes(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise ImageReadError(f"{path}: cannot read file ({err.strerror or err})") from err


def dicom_frames(path: str | Path) -> int:
    """How many frames an image file holds: ``NumberOfFrames`` of a DICOM image, else 1.

    Only the header is parsed.

    Raises:
        ImageReadError: the file is unreadable, or a DICOM file with a corrupt header or
            an absurd frame count.
    """
    data = _read_bytes(path)
    if sniff_format(data) not in (None, "dicom"):
        return 1
    return dicom_frame_count(data, str(path)) or 1


def image_frames(
    path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Iterator[tuple[int, Image]]:
    """``(frame, image)`` for every frame of an image file, read once, decoded one at a time.

    Raises:
        ImageReadError: see :func:`read_image`.
    """
    data, name = _read_bytes(path), str(path)
    count = 1
    if sniff_format(data) in (None, "dicom"):
        count = dicom_frame_count(data, name) or 1
    for frame in range(count):
        yield frame, decode_image(data, name=name, max_pixels=max_pixels, frame=frame)


def decode_image(
    data: bytes, *, name: str = "<bytes>", max_pixels: int = DEFAULT_MAX_PIXELS, frame: int = 0
) -> Image:
    """Decode an encoded image held in memory (e.g. an upload).

    Args:
        data: the encoded file content.
        name: what to call the data in error messages (a file name).
        max_pixels: largest ``width * height`` accepted (decompression-bomb guard).
        frame: which frame of a multi-frame DICOM image, from 0.

    Returns:
        The image; see :func:`read_image`.

    Raises:
        ImageReadError: see :func:`read_image`.
    """
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    data = bytes(data)
    if not data:
        raise ImageReadError(f"{name}: file is empty")
    fmt = sniff_format(data)
    if fmt is None and sniff_volume(data) is not None:
        if frame != 0:
            raise ImageReadError(f"{name}: no frame {frame}: a volume is read whole")
        return decode_volume(data, name=name, max_voxels=max_pixels)
    if fmt is not None and fmt != "dicom" and frame != 0:
        raise ImageReadError(f"{name}: no frame {frame}: a {fmt.upper()} image has one frame")
    if fmt == "tiff":
        return _decode_tiff(data, name, max_pixels)
    if fmt is not None and fmt != "dicom":
        return _decode_pillow(data, name, fmt, max_pixels)
    # DICOM: with its preamble, or (fmt None) possibly without one
    image = decode_dicom(data, name, max_pixels, forced=fmt is None, frame=frame)
    if image is None:
        raise ImageReadError(f"{name}: {UNSUPPORTED_MESSAGE}")
    return image


def _decode_pillow(data: bytes, name: str, fmt: str, max_pixels: int) -> Image:
    what = fmt.upper()
    pil_image = open_pillow(data, name, max_pixels, what)
    pixels, meta = pillow_pixels(pil_image, name, what)
    return Image(pixels=as_hwc(pixels, name), source_format=fmt, metadata=meta)


def _decode_tiff(data: bytes, name: str, max_pixels: int) -> Image:
    header = read_tiff_header(data)
    if header is not None:
        check_dimensions(name, header.width, header.height, max_pixels)
        if header.needs_tifffile:
            pixels, meta = decode_tiff(data, name)
            return Image(pixels=as_hwc(pixels, name), source_format="tiff", metadata=meta)
    try:
        return _decode_pillow(data, name, "tiff", max_pixels)
    except ImageReadError:
        if header is None:
            raise
    pixels, meta = decode_tiff(data, name)  # e.g. float RGB, which Pillow cannot open
    return Image(pixels=as_hwc(pixels, name), source_format="tiff", metadata=meta)
