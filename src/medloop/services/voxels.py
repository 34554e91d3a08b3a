"""Whole volumes for the browser's viewer, and whole label volumes back from it.

The viewer fetches a volume once and cuts its slices itself. Voxels travel raw and
little-endian, gzip-compressed (the browser inflates them with ``DecompressionStream``),
in *viewer order*: the canonical RAS+ array ``(X, Y, Z)`` with ``x`` varying fastest,
i.e. the C-order bytes of ``(Z, Y, X)``; voxel ``(x, y, z)`` is element
``x + X * (y + Y * z)``. A corrected label volume comes back the same way (uint8).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from medloop.domain.image import Image
from medloop.domain.viewer import VoxelHeader
from medloop.errors import MaskError
from medloop.io import default_window

__all__ = [
    "VoxelStream",
    "grid_of",
    "gzip_slabs",
    "image_stream",
    "label_stream",
    "read_label_voxels",
    "voxel_dtype",
]

SLAB = 8
"""Axial slices compressed per chunk: the stream starts at once and stays small in memory."""
LEVEL = 1
"""zlib level: the fastest; raw CT int16 compresses about 2x, label volumes 100x or more."""
_INT16 = np.iinfo(np.int16)


@dataclass(frozen=True)
class VoxelStream:
    """A volume's voxels, gzip-compressed in viewer order (see the module doc).

    Attributes:
        header: how to read the stream (shape ``(X, Y, Z)``, voxel type) and show it
            (spacing in mm, the volume's own window; none for labels).
        chunks: the gzip stream in pieces (a list when kept in a cache, so it can be sent
            again).
    """

    header: VoxelHeader
    chunks: Iterable[bytes]

    def headers(self) -> dict[str, str]:
        """The HTTP headers that describe the stream (``x-volume-*``, ``x-window-*``)."""
        head = self.header
        out = {
            "x-volume-shape": ",".join(str(n) for n in head.shape),
            "x-volume-dtype": head.dtype,
            "x-volume-order": "x-fastest",
        }
        if head.spacing is not None:
            out["x-volume-spacing"] = ",".join(f"{s:.6g}" for s in head.spacing)
        if head.center is not None and head.width is not None:
            out["x-window-center"] = f"{head.center:.6g}"
            out["x-window-width"] = f"{head.width:.6g}"
        return out


def image_stream(volume: Image) -> VoxelStream:
    """A single-channel volume ``(X, Y, Z, 1)`` as the viewer reads it: its header (voxel
    type from :func:`voxel_dtype`, its own window, spacing, affine) and its voxels as
    :func:`gzip_slabs` compresses them, while they are read."""
    gray = volume.pixels[..., 0]
    dtype = voxel_dtype(gray, volume.metadata.get("dtype"))
    center, width = default_window(volume)
    x, y, z = (int(n) for n in gray.shape)
    spacing = volume.spacing
    header = VoxelHeader(
        shape=(x, y, z),
        spacing=None
        if spacing is None
        else (float(spacing[0]), float(spacing[1]), float(spacing[2])),
        dtype="int16" if dtype.kind == "i" else "float32",
        center=float(center),
        width=float(width),
        affine=None if volume.affine is None else tuple(float(v) for v in volume.affine.ravel()),
    )
    return VoxelStream(header, gzip_slabs(gray, dtype))


def label_stream(labels: np.ndarray, header: VoxelHeader) -> VoxelStream:
    """A label volume ``(X, Y, Z)`` (uint8, on the grid of the image whose viewer header is
    ``header``) as the viewer reads it, compressed while it is read."""
    if tuple(labels.shape) != header.shape:
        raise ValueError(f"labels {labels.shape} are not on the volume's grid {header.shape}")
    return VoxelStream(header.labels(), gzip_slabs(labels, np.dtype(np.uint8)))


def grid_of(header: VoxelHeader) -> Image:
    """The grid a viewer header describes, as an :class:`Image` without voxels (zero-stride
    pixels ``(X, Y, Z, 1)``, spacing and affine): what a label volume is checked against."""
    pixels = np.broadcast_to(np.zeros((1, 1, 1, 1), np.float32), (*header.shape, 1))
    affine = None if header.affine is None else np.asarray(header.affine).reshape(4, 4)
    return Image(pixels, header.spacing, "viewer", {}, affine)


def voxel_dtype(pixels: np.ndarray, source: str | None = None) -> np.dtype:
    """``int16`` for integer voxels ``(X, Y, Z)`` that fit it, else ``float32`` (what the
    viewer reads). ``source``: the file's own voxel type (a decoder may have widened it,
    e.g. int32 to float32), whose integers are exact whatever ``pixels.dtype`` is."""
    kind = np.dtype(source).kind if source else pixels.dtype.kind
    if kind not in "biu" or pixels.size == 0:
        return np.dtype("<f4")
    if source in ("bool", "int8", "uint8", "int16"):
        return np.dtype("<i2")
    fits = _INT16.min <= float(pixels.min()) and float(pixels.max()) <= _INT16.max
    return np.dtype("<i2") if fits else np.dtype("<f4")


def gzip_slabs(volume: np.ndarray, dtype: np.dtype) -> Iterator[bytes]:
    """``volume`` ``(X, Y, Z)`` as one gzip stream of ``dtype`` voxels in viewer order,
    yielded :data:`SLAB` axial slices at a time (empty pieces skipped)."""
    packer = zlib.compressobj(LEVEL, zlib.DEFLATED, 31)  # wbits 31: a gzip wrapper
    for z0 in range(0, volume.shape[2], SLAB):
        slab = volume[:, :, z0 : z0 + SLAB].transpose(2, 1, 0).astype(dtype)
        piece = packer.compress(np.ascontiguousarray(slab).tobytes())
        if piece:
            yield piece
    yield packer.flush()


def read_label_voxels(data: bytes, shape: tuple[int, int, int], num_foreground: int) -> np.ndarray:
    """A gzip'd uint8 label volume in viewer order, as the canonical ``(X, Y, Z)`` array.

    Raises:
        MaskError: not gzip, not exactly ``X * Y * Z`` voxels, or labels above
            ``num_foreground``.
    """
    expected = int(np.prod(shape))
    inflater = zlib.decompressobj(31)
    try:
        raw = inflater.decompress(data, expected + 1)  # one byte more: too long is caught
    except zlib.error as err:
        raise MaskError(f"the label volume is not gzip data: {err}") from err
    if len(raw) != expected or inflater.unconsumed_tail or not inflater.eof:
        raise MaskError(
            f"the label volume must hold {expected} voxels {shape} (uint8, x fastest), "
            f"got {len(raw)}{' or more' if inflater.unconsumed_tail else ''} bytes"
        )
    labels = np.frombuffer(raw, np.uint8).reshape(shape[::-1]).transpose(2, 1, 0)
    top = int(labels.max()) if labels.size else 0
    if top > num_foreground:
        raise MaskError(f"label {top} is not one of the project's labels (0..{num_foreground})")
    return np.ascontiguousarray(labels)
