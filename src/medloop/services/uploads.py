"""What every upload shares: the server's limits, bounded reads, display-safe names."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from medloop.errors import UploadTooLarge
from medloop.storage.repositories import sanitize_filename

__all__ = ["UploadLimits", "is_dicom", "read_upload", "sanitize_filename"]


@dataclass(frozen=True)
class UploadLimits:
    """Uploads over ``max_bytes`` are refused as they stream in; images with more than
    ``max_pixels`` pixels are refused from their header, before decoding."""

    max_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 100_000_000


def read_upload(chunks: Iterable[bytes], max_bytes: int) -> bytes:
    """An upload's bytes, refused as soon as they pass ``max_bytes``."""
    buf = bytearray()
    for chunk in chunks:
        if len(buf) + len(chunk) > max_bytes:
            raise UploadTooLarge(f"upload exceeds the limit of {max_bytes} bytes")
        buf += chunk
    return bytes(buf)


def is_dicom(data: bytes) -> bool:
    """Whether ``data`` is a DICOM file (the ``DICM`` magic after the 128-byte preamble)."""
    return len(data) >= 132 and data[128:132] == b"DICM"
