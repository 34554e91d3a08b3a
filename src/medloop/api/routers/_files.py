"""Streaming uploaded files out of Starlette's spooled temp files, chunk by chunk."""

from __future__ import annotations

from collections.abc import Iterator

from starlette.datastructures import UploadFile

from medloop.storage.repositories import sanitize_filename

__all__ = ["chunks", "safe_name"]

CHUNK = 1 << 20


def chunks(upload: UploadFile) -> Iterator[bytes]:
    upload.file.seek(0)
    while True:
        block = upload.file.read(CHUNK)
        if not block:
            return
        yield block


def safe_name(upload: UploadFile, default: str = "upload") -> str:
    """The client's file name with path parts, NUL and control characters removed."""
    return sanitize_filename(upload.filename or default, default)
