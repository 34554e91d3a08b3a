"""Streaming uploaded files out of Starlette's spooled temp files, chunk by chunk."""

from __future__ import annotations

from collections.abc import Iterator

from starlette.datastructures import UploadFile

__all__ = ["chunks", "filename"]

CHUNK = 1 << 20


def chunks(upload: UploadFile) -> Iterator[bytes]:
    upload.file.seek(0)
    while True:
        block = upload.file.read(CHUNK)
        if not block:
            return
        yield block


def filename(upload: UploadFile, default: str = "upload") -> str:
    """The client's file name as sent (the services make it display-safe)."""
    return upload.filename or default
