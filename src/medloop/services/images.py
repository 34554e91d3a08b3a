"""Images on the server: content-addressed uploads (de-identified on ingest when asked).

Every upload is streamed into a private staging file (hashed, fsynced), decoded and
validated, and only then committed to the blob store and recorded; a rejected upload
leaves neither a blob nor a row. A multi-frame DICOM image is one image (``frames``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from medloop.domain.dicom import DicomSettings
from medloop.domain.image import Image
from medloop.domain.records import ImageRecord
from medloop.errors import InputError
from medloop.io import decode_image, dicom_frames, read_image
from medloop.services.uploads import UploadLimits, sanitize_filename
from medloop.storage import repo_dicom
from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobRef, BlobStore
from medloop.storage.database import Database

__all__ = ["Images"]


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


class Images:
    """Upload, look up and decode a project's images.

    Args:
        db: the database.
        blobs: where the bytes live.
        limits: upload size and pixel limits.
    """

    def __init__(self, db: Database, blobs: BlobStore, limits: UploadLimits) -> None:
        self.db, self.blobs, self.limits = db, blobs, limits

    def _deidentify_key(self, project_id: str) -> str | None:
        with self.db.read() as s:
            raw = repo.get_project(s, project_id).dicom
        settings = DicomSettings.load(raw)
        return settings.deidentify.key if settings.deidentify.enabled else None

    def ingest(
        self,
        project_id: str,
        chunks: Iterable[bytes],
        filename: str,
        content_type: str,
        user_id: str | None,
        check: Callable[[Image], None] | None = None,
    ) -> tuple[ImageRecord, bool]:
        """Store and validate an uploaded image; returns ``(image, created)``.

        When the project de-identifies on ingest, a DICOM upload is de-identified (Basic
        Profile, keyed pseudonyms) before its row is written; the original bytes are not
        kept, the file name becomes the pseudonymous SOP Instance UID, and the pseudonyms
        go to the project's pseudonym map.

        Args:
            check: called with the decoded image before anything is stored; what it
                raises refuses the upload (e.g. a reference mask that does not fit).

        Raises:
            ImageReadError: not an image this server reads (nothing is stored).
            UploadTooLarge: over the upload limit.
        """
        filename = sanitize_filename(filename or "upload")
        entries: list[tuple[str, str, str]] = []
        # Validated while still private: a rejected upload never enters the shared store,
        # and with de-identification on ingest the original bytes never do either.
        with self.blobs.staged(chunks, max_bytes=self.limits.max_bytes) as staged:
            try:
                image = read_image(staged.path, max_pixels=self.limits.max_pixels)
                frames = dicom_frames(staged.path)
            except InputError as err:
                raise type(err)(str(err).replace(str(staged.path), filename)) from err
            if check is not None:
                check(image)
            key = self._deidentify_key(project_id) if image.source_format == "dicom" else None
            if key is not None:
                ref, entries = _deidentified_copy(self.blobs, staged.path, key)
                image = read_image(self.blobs.path(ref.key), max_pixels=self.limits.max_pixels)
                filename = f"{image.metadata.get('SOPInstanceUID', 'image')}.dcm"
            else:
                ref = staged.commit()
        with self.db.write() as s:
            repo.claim_blobs(s, self.blobs.exists, ref.key)
            if entries:
                repo_dicom.add_pseudonyms(s, project_id, entries)
            return repo.create_image(
                s,
                project_id=project_id,
                sha256=ref.sha256,
                blob_key=ref.key,
                filename=filename,
                content_type=content_type or "application/octet-stream",
                width=image.width,
                height=image.height,
                channels=image.channels,
                spacing_mm=(image.spacing[0], image.spacing[1])
                if image.ndim == 2 and image.spacing
                else None,
                meta=json.loads(json.dumps(image.metadata, default=str)),
                created_by=user_id,
                frames=frames,
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
