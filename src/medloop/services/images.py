"""Images on the server: content-addressed uploads (de-identified on ingest when asked).

Every upload is streamed into a private staging file (hashed, fsynced), decoded and
validated, and only then committed to the blob store and recorded; a rejected upload
leaves neither a blob nor a row. A multi-frame DICOM image is one image (``frames``).
A volume assembled from DICOM keeps its source headers (no pixel data) in a second
blob, de-identified like a 2D DICOM original when the project asks.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from medloop.domain.dicom import DicomSettings
from medloop.domain.image import Image
from medloop.domain.records import ImageRecord
from medloop.domain.secrets import SecretBox
from medloop.errors import InputError, TooManyFrames
from medloop.io import decode_image, dicom_frames, read_image
from medloop.services.uploads import UploadLimits, sanitize_filename
from medloop.storage import repo_dicom
from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobRef, BlobStore, StagedBlob
from medloop.storage.database import Database

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["Images", "StagedImage"]


def _deidentified_copy(
    blobs: BlobStore, path: Path, key: str
) -> tuple[BlobRef, list[tuple[str, str, str]]]:
    """Store a de-identified copy of the DICOM file at ``path``; returns it and the pseudonyms."""
    import pydicom

    from medloop.dicom.deid import Deidentifier
    from medloop.dicom.seg import encode_dataset

    ds = pydicom.dcmread(path)
    entries = Deidentifier(key).apply(ds)
    return blobs.put_bytes(encode_dataset(ds)), entries


def _stored_headers(
    blobs: BlobStore, headers: Sequence[Dataset], key: str | None
) -> tuple[BlobRef, dict[str, Any], list[tuple[str, str, str]]]:
    """Store a volume's source headers (de-identified with ``key`` when given); returns
    the blob, what the image record keeps of them and the pseudonyms used."""
    import copy

    from medloop.dicom.series_headers import pack_headers
    from medloop.services.series import series_meta

    entries: list[tuple[str, str, str]] = []
    if key is not None:
        from medloop.dicom.deid import Deidentifier

        deid = Deidentifier(key)
        headers = [copy.deepcopy(ds) for ds in headers]
        for ds in headers:
            entries.extend(deid.apply(ds))
    ref = blobs.put_bytes(pack_headers(headers))
    return ref, series_meta(headers), list(dict.fromkeys(entries))


class StagedImage:
    """An upload read and validated but not yet stored (see :meth:`Images.staged`).

    Attributes:
        image: its pixels (frame 0 of a multi-frame image).
        frames: its number of frames (1 for a volume or a single image).
        filename: the display-safe name it will be stored under.
    """

    def __init__(
        self,
        images: Images,
        project_id: str,
        staged: StagedBlob,
        image: Image,
        frames: int,
        filename: str,
    ) -> None:
        self._images, self._project_id, self._staged = images, project_id, staged
        self.image, self.frames, self.filename = image, frames, filename
        self.entries: list[tuple[str, str, str]] = []
        self.ref: BlobRef | None = None
        self.headers: Sequence[Dataset] | None = None
        """Source headers of a volume assembled from DICOM (stored at :meth:`commit`)."""
        self.headers_ref: BlobRef | None = None
        self.headers_meta: dict[str, Any] = {}

    def commit(self) -> BlobRef:
        """Put the bytes in the blob store (de-identified first when the project asks)."""
        if self.ref is not None:
            return self.ref
        images = self._images
        key = None
        if self.image.source_format == "dicom" or self.headers:
            key = images._deidentify_key(self._project_id)
        if self.headers:
            self.headers_ref, self.headers_meta, self.entries = _stored_headers(
                images.blobs, self.headers, key
            )
        if self.image.source_format != "dicom" or key is None:
            self.ref = self._staged.commit()
            return self.ref
        self.ref, self.entries = _deidentified_copy(images.blobs, self._staged.path, key)
        limits = images.limits
        self.image = read_image(images.blobs.path(self.ref.key), max_pixels=limits.max_pixels)
        self.filename = f"{self.image.metadata.get('SOPInstanceUID', 'image')}.dcm"
        return self.ref


class Images:
    """Upload, look up and decode a project's images.

    Args:
        db: the database.
        blobs: where the bytes live.
        limits: upload size and pixel limits.
        box: opens the projects' de-identification keys.
    """

    def __init__(
        self, db: Database, blobs: BlobStore, limits: UploadLimits, box: SecretBox
    ) -> None:
        self.db, self.blobs, self.limits, self.box = db, blobs, limits, box

    def _deidentify_key(self, project_id: str) -> str | None:
        with self.db.read() as s:
            raw = repo.get_project(s, project_id).dicom
        settings = DicomSettings.load(raw, self.box)
        return settings.deidentify.key if settings.deidentify.enabled else None

    def ingest(
        self,
        project_id: str,
        chunks: Iterable[bytes],
        filename: str,
        content_type: str,
        user_id: str | None,
        max_frames: int | None = None,
        check: Callable[[StagedImage], None] | None = None,
        headers: Sequence[Dataset] | None = None,
    ) -> tuple[ImageRecord, bool]:
        """Store and validate an uploaded image; returns ``(image, created)``.

        ``check`` looks at the upload before it is stored and may refuse it (raise).

        When the project de-identifies on ingest, a DICOM upload is de-identified (Basic
        Profile, keyed pseudonyms) before its row is written; the original bytes are not
        kept, the file name becomes the pseudonymous SOP Instance UID, and the pseudonyms
        go to the project's pseudonym map.

        Args:
            check: called with the decoded image before anything is stored; what it
                raises refuses the upload (e.g. a reference mask that does not fit).
            headers: the source headers of a volume assembled from DICOM (kept with it).

        Raises:
            ImageReadError: not an image this server reads (nothing is stored).
            UploadTooLarge: over the upload limit.
            TooManyFrames: more frames or slices than ``max_frames``.
        """
        with self.staged(project_id, chunks, filename, max_frames) as upload:
            upload.headers = headers
            if check is not None:
                check(upload)
            upload.commit()
        with self.db.write() as s:
            return self.record(s, project_id, upload, content_type, user_id)

    @contextlib.contextmanager
    def staged(
        self,
        project_id: str,
        chunks: Iterable[bytes],
        filename: str,
        max_frames: int | None = None,
    ) -> Iterator[StagedImage]:
        """An upload written to a private file and read (so validated), not yet stored.

        Inside the block the caller may check more (a mask against the image's size)
        and then :meth:`StagedImage.commit` its bytes; :meth:`record` writes the row, in
        the caller's transaction. Whatever is not committed is gone when the block ends.

        Raises:
            ImageReadError, UploadTooLarge, TooManyFrames: see :meth:`ingest`.
        """
        name = sanitize_filename(filename or "upload")
        # Validated while still private: a rejected upload never enters the shared store,
        # and with de-identification on ingest the original bytes never do either.
        with self.blobs.staged(chunks, max_bytes=self.limits.max_bytes) as staged:
            try:
                image = read_image(staged.path, max_pixels=self.limits.max_pixels)
                frames = dicom_frames(staged.path)
            except InputError as err:
                raise type(err)(str(err).replace(str(staged.path), name)) from err
            depth = frames if frames > 1 else (image.shape[2] if image.ndim == 3 else 1)
            if max_frames is not None and depth > max_frames:
                unit = "frames" if frames > 1 else "slices"
                raise TooManyFrames(
                    f"{name}: {depth} {unit}; this project analyses at most {max_frames} "
                    "per request (its max_frames setting)"
                )
            upload = StagedImage(self, project_id, staged, image, frames, name)
            yield upload

    def record(
        self,
        session: Session,
        project_id: str,
        upload: StagedImage,
        content_type: str,
        user_id: str | None,
    ) -> tuple[ImageRecord, bool]:
        """Write the row of a committed upload in ``session``; returns ``(image, created)``."""
        ref, image = upload.ref, upload.image
        if ref is None:
            raise RuntimeError("record() before commit()")
        headers = upload.headers_ref
        keys = [ref.key] if headers is None else [ref.key, headers.key]
        repo.claim_blobs(session, self.blobs.exists, *keys)
        if upload.entries:
            repo_dicom.add_pseudonyms(session, project_id, upload.entries)
        return repo.create_image(
            session,
            project_id=project_id,
            sha256=ref.sha256,
            blob_key=ref.key,
            filename=upload.filename,
            content_type=content_type or "application/octet-stream",
            width=image.width,
            height=image.height,
            channels=image.channels,
            spacing_mm=(image.spacing[0], image.spacing[1])
            if image.ndim == 2 and image.spacing
            else None,
            meta=json.loads(json.dumps({**image.metadata, **upload.headers_meta}, default=str)),
            created_by=user_id,
            frames=upload.frames,
            headers=None if headers is None else (headers.key, headers.sha256),
        )

    def get(self, project_id: str, image_id: str) -> ImageRecord:
        """One image of the project (``NotFoundError`` otherwise)."""
        with self.db.read() as s:
            return repo.get_image(s, image_id, project_id)

    def file(self, project_id: str, image_id: str) -> bytes:
        """The image's stored bytes, checked against its sha256."""
        image = self.get(project_id, image_id)
        return self.blobs.read_bytes(image.blob_key, image.sha256)

    def pixels(self, image: ImageRecord, frame: int = 0) -> Image:
        """A stored image's pixels (frame ``frame`` of a multi-frame image)."""
        return decode_image(
            self.blobs.read_bytes(image.blob_key, image.sha256),
            name=image.filename,
            max_pixels=self.limits.max_pixels,
            frame=frame,
        )
