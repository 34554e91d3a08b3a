"""A DICOM series uploaded in one request (several ``file`` parts, or one zip of them), or
an enhanced multi-frame DICOM image with per-frame geometry, turned into the volume a 3D
project analyses.

The instances are read into memory (each at most the upload limit, at most the
project's ``max_frames`` of them), assembled and checked by
:func:`~medloop.io.dicom_series.assemble_series`, and the volume is kept as a gzipped
NIfTI (pixels, spacing and affine; no DICOM attributes). The instances' headers,
without pixel data, come along (:class:`Unpacked`): the image keeps them in a blob of
their own (de-identified first when the project asks, like a 2D DICOM original), so a
DICOM SEG of the volume can reference every source instance.
"""

from __future__ import annotations

import io
import itertools
import posixpath
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from medloop.domain.settings import ProjectSettings
from medloop.errors import ImageReadError, TooManyFrames
from medloop.io._dicom import dicom_frame_count
from medloop.io.dicom_series import assemble_frames, assemble_series
from medloop.io.volumes import encode_volume
from medloop.services.uploads import UploadLimits, read_upload, sanitize_filename

__all__ = [
    "SERIES_NAME",
    "ZIP_MAGIC",
    "SeriesVolume",
    "Unpacked",
    "series_meta",
    "series_volume",
    "unpack_series",
]

ZIP_MAGIC = b"PK\x03\x04"
SERIES_NAME = "series.nii.gz"
"""The file name a series' volume is stored under."""
_IGNORED = ("__MACOSX/",)


@dataclass(frozen=True)
class SeriesVolume:
    """A DICOM series (or enhanced multi-frame image) as the volume to store.

    Attributes:
        volume: the gzipped NIfTI (canonical grid, affine).
        headers: the source instances' datasets without pixel data, as sent.
    """

    volume: bytes
    headers: list[Dataset]


@dataclass(frozen=True)
class Unpacked:
    """One upload as it will be stored: its bytes, name and type, and the source headers
    when it was assembled from DICOM (``None`` otherwise)."""

    chunks: Iterable[bytes]
    filename: str
    content_type: str
    headers: list[Dataset] | None = None


_META_KEYS = ("StudyInstanceUID", "SeriesInstanceUID", "PatientID", "Modality")


def series_meta(headers: Sequence[Dataset]) -> dict[str, Any]:
    """What an image record keeps of a series (as 2D DICOM images do): its study, series,
    patient and modality, and how many instances it has."""
    first = headers[0]
    meta: dict[str, Any] = {k: str(first.get(k)) for k in _META_KEYS if first.get(k)}
    meta["instances"] = len(headers)
    return meta


def _headers(files: Sequence[tuple[str, bytes]]) -> list[Dataset]:
    from medloop.dicom.series_headers import headers_only

    return [headers_only(data) for _, data in files]


def _too_many(count: int, limit: int) -> TooManyFrames:
    return TooManyFrames(
        f"series: {count} instances; this project analyses at most {limit} slices per "
        "request (its max_frames setting)"
    )


def _zip_members(data: bytes, max_bytes: int, limit: int) -> list[tuple[str, bytes]]:
    """The files of a zip (folders and ``__MACOSX`` skipped), each at most ``max_bytes``."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as err:
        raise ImageReadError(f"not a readable zip ({err})") from err
    with archive:
        infos = [
            i for i in archive.infolist() if not i.is_dir() and not i.filename.startswith(_IGNORED)
        ]
        if len(infos) > limit:
            raise _too_many(len(infos), limit)
        out = []
        for info in infos:
            name = posixpath.basename(info.filename)
            if info.file_size > max_bytes:
                raise ImageReadError(f"{name}: {info.file_size} bytes, over the upload limit")
            try:
                with archive.open(info) as fh:
                    body = fh.read(max_bytes + 1)
            except (RuntimeError, zipfile.BadZipFile, OSError) as err:  # encrypted, corrupt
                raise ImageReadError(f"{name}: cannot read it from the zip ({err})") from err
            if len(body) > max_bytes:
                raise ImageReadError(f"{name}: over the upload limit once unpacked")
            out.append((sanitize_filename(name), body))
    return out


def series_volume(
    parts: Sequence[tuple[str, Iterable[bytes]]], limits: UploadLimits, settings: ProjectSettings
) -> SeriesVolume:
    """The volume (a gzipped NIfTI) and the headers of the series sent as ``parts``
    (``(file name, chunks)`` each; one part that is a zip holds the instances) for a
    project with ``settings``.

    Raises:
        ImageReadError: a 2D project; see :func:`~medloop.io.dicom_series.assemble_series`;
            a bad zip.
        TooManyFrames: more instances than the project's ``max_frames``.
        UploadTooLarge: an instance over the upload limit.
    """
    if settings.spatial_dims != 3:
        raise ImageReadError(
            "a DICOM series is a 3D volume, but this project is 2D: send its instances "
            "one at a time"
        )
    max_frames = settings.max_frames
    if len(parts) > max_frames:
        raise _too_many(len(parts), max_frames)
    files = [
        (sanitize_filename(name or "instance"), read_upload(chunks, limits.max_bytes))
        for name, chunks in parts
    ]
    if len(files) == 1 and files[0][1].startswith(ZIP_MAGIC):
        files = _zip_members(files[0][1], limits.max_bytes, max_frames)
    volume = assemble_series(files, max_pixels=limits.max_pixels)
    return SeriesVolume(encode_volume(volume), _headers(files))


def unpack_series(
    chunks: Iterable[bytes],
    filename: str,
    content_type: str,
    limits: UploadLimits,
    settings: ProjectSettings,
) -> Unpacked:
    """One uploaded file as it will be stored: as it came, or the volume (a gzipped NIfTI)
    and headers of a zip of a DICOM series (:func:`series_volume`) or, in a 3D project,
    of an enhanced multi-frame DICOM image with per-frame geometry."""
    stream = iter(chunks)
    head = b""
    for chunk in stream:  # enough to tell a zip or a DICOM file
        head += chunk
        if len(head) >= 132:
            break
    rest = itertools.chain([head], stream)
    if head.startswith(ZIP_MAGIC):
        series = series_volume([(filename, rest)], limits, settings)
        return Unpacked([series.volume], SERIES_NAME, "application/gzip", series.headers)
    if settings.spatial_dims == 3 and head[128:132] == b"DICM":
        data = read_upload(rest, limits.max_bytes)
        if dicom_frame_count(data, filename) in (None, 1):
            return Unpacked([data], filename, content_type)  # one image: refused as 2D later
        frames = assemble_frames(
            data, filename, max_pixels=limits.max_pixels, max_frames=settings.max_frames
        )
        headers = _headers([(filename, data)])
        return Unpacked([encode_volume(frames)], SERIES_NAME, "application/gzip", headers)
    return Unpacked(rest, filename, content_type)
