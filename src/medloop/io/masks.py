"""Segmentation masks: read and validate label maps, write them, draw overlays.

A label map is a uint8 array ``(H, W)``: 0 is background, ``1..K`` are the
project's foreground labels. Readers accept gray images (8/16-bit), palette
images (the palette *index* is the label), RGB/RGBA whose three channels are
equal, and binary 0/255 masks (255 becomes label 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from scipy import ndimage

from medloop.domain.image import Image
from medloop.durable import atomic_write_bytes
from medloop.errors import ConfigError, ImageReadError, MaskError
from medloop.io._common import decode_guard, sniff_format
from medloop.io._pillow import open_pillow, without_bomb_warning
from medloop.io.display import to_display_rgb
from medloop.io.images import DEFAULT_MAX_PIXELS, decode_image
from medloop.io.volumes import decode_label_volume, sniff_volume

__all__ = [
    "decode_mask",
    "encode_label_map_png",
    "encode_png",
    "mask_from_array",
    "read_mask",
    "render_overlay",
    "write_label_map_png",
    "write_overlay_png",
]

_MAX_LISTED = 10


def _size(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]}"


def _label_values(arr: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an integer array (bincount when the range is small)."""
    if arr.dtype.kind in "ui" and arr.size and arr.min() >= 0 and arr.max() < 65536:
        return np.flatnonzero(np.bincount(arr.reshape(-1).astype(np.int64)))
    return np.unique(arr)


def mask_from_array(
    arr: np.ndarray,
    *,
    name: str,
    num_foreground: int,
    expected_shape: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Validate an array as a label map for a project with K foreground labels.

    Args:
        arr: ``(H, W)``, ``(H, W, 1)``, ``(H, W, 2)`` (gray + alpha), or
            ``(H, W, 3|4)`` RGB(A) with three equal channels; integer, bool, or
            float holding whole numbers.
        name: the mask's file name, for messages.
        num_foreground: K, the number of foreground labels (1..255).
        expected_shape: the image's ``(H, W)``; the mask must match it.

    Returns:
        uint8 ``(H, W)`` with values in ``0..K``; 0/255 binary masks become 0/1.

    Raises:
        MaskError: wrong layout or size, colour channels, non-integer or
            out-of-range values (the message lists them).
    """
    if not 1 <= num_foreground <= 255:
        raise ValueError(f"num_foreground must be in 1..255, got {num_foreground}")
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] in (2, 4):
        a = a[:, :, :-1]  # drop alpha
    if a.ndim == 3 and a.shape[2] == 3:
        if not (np.array_equal(a[:, :, 0], a[:, :, 1]) and np.array_equal(a[:, :, 1], a[:, :, 2])):
            raise MaskError(
                f"{name}: colour mask (R, G, B differ); save labels as gray values or "
                "palette indices"
            )
        a = a[:, :, 0]
    elif a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim != 2:
        raise MaskError(f"{name}: a mask must be (H, W), got shape {a.shape}")
    if a.size == 0:
        raise MaskError(f"{name}: mask has zero size ({_size(a.shape)})")
    if expected_shape is not None and tuple(a.shape) != tuple(expected_shape):
        raise MaskError(
            f"{name}: mask is {_size(a.shape)} but the image is {_size(expected_shape)} (WxH)"
        )
    if a.dtype == np.bool_:
        return a.astype(np.uint8)
    if a.dtype.kind == "f":
        finite = np.isfinite(a)
        fractional = ~finite | (a != np.round(np.where(finite, a, 0)))
        if fractional.any():
            example = float(a[fractional].flat[0])
            raise MaskError(
                f"{name}: mask has non-integer values (e.g. {example}); labels are 0..K"
            )
        a = a.astype(np.int64)
    elif a.dtype.kind not in "ui":
        raise MaskError(f"{name}: unsupported mask type {a.dtype}")
    values = _label_values(a)
    if num_foreground < 255 and values.size and values[-1] == 255 and set(values) <= {0, 255}:
        return (a == 255).astype(np.uint8)
    bad = values[(values < 0) | (values > num_foreground)]
    if bad.size:
        listed = ", ".join(str(int(v)) for v in bad[:_MAX_LISTED])
        more = f", ... ({bad.size} values)" if bad.size > _MAX_LISTED else ""
        raise MaskError(
            f"{name}: label values [{listed}{more}] are outside the project's labels "
            f"0..{num_foreground}"
        )
    return a.astype(np.uint8)


def _palette_labels(image: PILImage.Image) -> np.ndarray:
    """Palette index per pixel, or gray values for a black/white palette mask."""
    indices = np.asarray(image)
    if indices.ndim == 3:  # PA
        indices = indices[:, :, 0]
    raw = image.getpalette(rawmode="RGB") or []
    palette = np.zeros((256, 3), dtype=np.uint8)
    entries = np.asarray(raw, dtype=np.uint8).reshape(-1, 3)[:256]
    palette[: len(entries)] = entries
    used = palette[_label_values(indices)]
    gray = np.all(used == used[:, :1], axis=1)
    if gray.all() and set(used[:, 0].tolist()) <= {0, 255}:
        return palette[indices, 0]  # a 0/255 mask stored with a (possibly shuffled) palette
    return indices


def _decode_mask_pixels(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    fmt = sniff_format(data)
    if fmt in (None, "dicom", "tiff"):  # TIFF/DICOM label maps are plain gray images
        return decode_image(data, name=name, max_pixels=max_pixels).pixels
    image = open_pillow(data, name, max_pixels, "mask")
    with decode_guard(name, "mask"), without_bomb_warning():
        image.load()
        if image.mode in ("P", "PA"):
            return _palette_labels(image)
        if image.mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBa", "RGBX", "La"):
            return np.asarray(image.convert("RGB"))
        return np.asarray(image)


def decode_mask(
    data: bytes,
    *,
    name: str,
    num_foreground: int,
    expected_shape: tuple[int, ...] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    image: Image | None = None,
) -> np.ndarray:
    """Decode and validate an encoded mask (PNG, TIFF, BMP, GIF, JPEG, DICOM; or a label
    volume in NIfTI or NRRD).

    Args:
        data: the encoded file.
        name: file name for messages.
        num_foreground: K, the number of foreground labels.
        expected_shape: the image's spatial shape, when known.
        max_pixels: largest ``width * height`` accepted.
        image: the image the mask belongs to: a label volume must share its grid
            (shape and affine).

    Returns:
        uint8 label map ``(H, W)`` (or ``(X, Y, Z)``) with values in ``0..K``.

    Raises:
        ImageReadError: the data is not a readable image.
        MaskError: see :func:`mask_from_array` and :func:`~medloop.io.volumes.decode_label_volume`.
    """
    if not data:
        raise ImageReadError(f"{name}: file is empty")
    if sniff_volume(data) is not None or (image is not None and image.is_volume):
        if image is not None and not image.is_volume:
            raise MaskError(f"{name}: a label volume cannot be the mask of a 2D image")
        labels = decode_label_volume(data, name=name, num_foreground=num_foreground, image=image)
        if expected_shape is not None and labels.shape != tuple(expected_shape):
            raise MaskError(f"{name}: label volume is {labels.shape}, the image {expected_shape}")
        return labels
    pixels = _decode_mask_pixels(bytes(data), name, max_pixels)
    try:
        return mask_from_array(
            pixels, name=name, num_foreground=num_foreground, expected_shape=expected_shape
        )
    except MaskError as err:
        if sniff_format(data) == "jpeg":
            raise MaskError(f"{err} (JPEG is lossy: save masks as PNG)") from err
        raise


def read_mask(
    path: str | Path,
    *,
    num_foreground: int,
    expected_shape: tuple[int, ...] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Read and validate a mask file; see :func:`decode_mask`."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ImageReadError(f"{path}: cannot read file ({err.strerror or err})") from err
    return decode_mask(
        data,
        name=str(path),
        num_foreground=num_foreground,
        expected_shape=expected_shape,
        max_pixels=max_pixels,
    )


def encode_png(pixels: np.ndarray, compress_level: int = 6) -> bytes:
    """Encode uint8 ``(H, W, 3)`` RGB or ``(H, W)`` gray pixels as PNG bytes (zlib level 0..9)."""
    arr = np.asarray(pixels)
    if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(f"encode_png needs uint8 (H, W) or (H, W, 3), got {arr.dtype} {arr.shape}")
    buffer = BytesIO()
    image = PILImage.fromarray(np.ascontiguousarray(arr))
    image.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def encode_label_map_png(labels: np.ndarray) -> bytes:
    """Encode a label map ``(H, W)`` (values 0..255) as an 8-bit gray PNG.

    zlib level 1: every analysis stores one, and its few values compress well at the
    fastest level (about half the time of the default level, a little larger)."""
    arr = np.asarray(labels)
    if arr.ndim != 2 or arr.dtype.kind not in "uib":
        raise ValueError(f"a label map must be integer (H, W), got {arr.dtype} {arr.shape}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 255):
        raise ValueError(f"label values must be 0..255, got {int(arr.min())}..{int(arr.max())}")
    return encode_png(arr.astype(np.uint8), compress_level=1)


def write_label_map_png(path: str | Path, labels: np.ndarray) -> None:
    """Write a label map as an 8-bit gray PNG (pixel value = label), atomically."""
    atomic_write_bytes(Path(path), encode_label_map_png(labels))


def _parse_color(color: str) -> np.ndarray:
    text = color.strip()
    if len(text) != 7 or not text.startswith("#"):
        raise ConfigError(f"colour {color!r} is not of the form '#rrggbb'")
    try:
        return np.array([int(text[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float32)
    except ValueError as err:
        raise ConfigError(f"colour {color!r} is not of the form '#rrggbb'") from err


def render_overlay(
    image: Image,
    labels: np.ndarray,
    colors: Sequence[str],
    alpha: float = 0.45,
    outline: bool = True,
) -> np.ndarray:
    """The image for viewing with each label blended in its colour.

    Args:
        image: the image; shown through :func:`~medloop.io.display.to_display_rgb`.
        labels: ``(H, W)`` label map matching the image.
        colors: ``'#rrggbb'`` for labels ``1..len(colors)``.
        alpha: opacity of the fill, 0 (none) to 1 (solid).
        outline: also draw each region's 1-pixel contour in the solid colour.

    Returns:
        uint8 ``(H, W, 3)``.

    Raises:
        ValueError: labels of another size, labels without a colour, bad alpha.
        ConfigError: a colour is not ``'#rrggbb'``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be within 0..1, got {alpha}")
    lab = np.asarray(labels)
    if lab.shape != image.shape:
        raise ValueError(f"labels {lab.shape} do not match the image {image.shape}")
    rgb = [_parse_color(c) for c in colors]
    present = _label_values(lab.astype(np.int64))
    missing = [int(v) for v in present if v < 0 or v > len(rgb)]
    if missing:
        raise ValueError(f"label values {missing} have no colour ({len(rgb)} colours given)")
    out = to_display_rgb(image).astype(np.float32)
    for value, color in enumerate(rgb, start=1):
        region = lab == value
        if not region.any():
            continue
        out[region] = (1.0 - alpha) * out[region] + alpha * color
        if outline:
            edge = region & ~ndimage.binary_erosion(region, border_value=1)
            out[edge] = color
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def write_overlay_png(
    path: str | Path,
    image: Image,
    labels: np.ndarray,
    colors: Sequence[str],
    alpha: float = 0.45,
) -> None:
    """Render :func:`render_overlay` and write it as an RGB PNG, atomically."""
    atomic_write_bytes(Path(path), encode_png(render_overlay(image, labels, colors, alpha)))
