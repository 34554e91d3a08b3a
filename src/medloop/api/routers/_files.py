"""Streaming uploaded files out of Starlette's spooled temp files, chunk by chunk; and
stored label maps back out as downloads."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Response
from starlette.datastructures import UploadFile

from medloop.services.volume_view import LabelFile

__all__ = ["chunks", "filename", "label_response"]

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


def label_response(label: LabelFile) -> Response:
    """A stored label map (PNG, or gzipped NIfTI for a volume) as an attachment."""
    return Response(
        label.data,
        media_type=label.media_type,
        headers={"Content-Disposition": f'attachment; filename="{label.filename}"'},
    )
