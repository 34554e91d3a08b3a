"""Bad uploads, made here from nothing but numpy, Pillow, tifffile and pydicom's own CT."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pydicom
import tifffile
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

__all__ = [
    "bilevel_png",
    "ct",
    "dicom_bytes",
    "multiframe",
    "png",
    "png_of",
    "tiff_of",
]


def png_of(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def png(seed: int, size: int = 64) -> bytes:
    """A distinct gray image for every ``seed``."""
    rng = np.random.default_rng(seed)
    return png_of(rng.integers(0, 255, (size, size), dtype=np.uint8))


def jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def tiff_of(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr)
    return buf.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def bilevel_png(width: int, height: int) -> bytes:
    """A 1-bit PNG of any size, built row by row (tiny on disk, huge decoded); 0 sizes too."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", body)
        + _chunk(b"IEND", b"")
    )


def ct() -> Dataset:
    """A fresh copy of pydicom's bundled CT_small.dcm."""
    return pydicom.dcmread(str(get_testdata_file("CT_small.dcm", download=False)))


def dicom_bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def multiframe(frames: int, size: int = 16) -> bytes:
    """A CT with ``frames`` frames of ``size`` × ``size`` pixels (small on the wire)."""
    ds = ct()
    rng = np.random.default_rng(frames)
    stack = rng.integers(0, 1000, (frames, size, size)).astype(np.int16)
    ds.Rows, ds.Columns = size, size
    ds.NumberOfFrames = frames
    ds.PixelData = stack.tobytes()
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return dicom_bytes(ds)


def no_pixels() -> bytes:
    ds = ct()
    del ds.PixelData
    return dicom_bytes(ds)


def mpeg2() -> bytes:
    ds = ct()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"
    ds.PixelData = pydicom.encaps.encapsulate([b"\x00" * 16])
    ds["PixelData"].VR = "OB"
    return dicom_bytes(ds)


def absurd_size() -> bytes:
    ds = ct()
    ds.Rows, ds.Columns = 60000, 60000
    return dicom_bytes(ds)


def absurd_frames() -> bytes:
    ds = ct()
    ds.NumberOfFrames = 1
    tag = b"\x28\x00\x08\x00IS\x02\x001 "
    value = b"100000"
    return dicom_bytes(ds).replace(tag, tag[:6] + len(value).to_bytes(2, "little") + value)


def short_pixels() -> bytes:
    ds = ct()
    ds.PixelData = ds.PixelData[:1000]
    return dicom_bytes(ds)
