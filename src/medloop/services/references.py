"""Reference pairs: an image with its ground-truth label map, in a train/val/test split.

The mask is validated against the image and the project's labels and kept as the
canonical label-map PNG (0..K), whatever format was uploaded. A pair is stored whole or
not at all: the image is checked, then the mask against it, while both are still
private; only then do their blobs enter the store, and the image row and the pair row
are written in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable

from medloop.domain.records import ProjectRecord, ReferenceRecord
from medloop.errors import InputError
from medloop.io import decode_mask, encode_label_map_png
from medloop.services.images import Images
from medloop.services.uploads import read_upload, sanitize_filename
from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobStore
from medloop.storage.database import Database

__all__ = ["References"]

SPLITS = ("train", "val", "test")


class References:
    """Add and list a project's reference pairs.

    Args:
        db: the database.
        blobs: where the masks are kept.
        images: where the images go.
    """

    def __init__(self, db: Database, blobs: BlobStore, images: Images) -> None:
        self.db, self.blobs, self.images = db, blobs, images

    def add(
        self,
        project: ProjectRecord,
        image_chunks: Iterable[bytes],
        image_name: str,
        image_type: str,
        mask_chunks: Iterable[bytes],
        mask_name: str,
        split: str,
        user_id: str | None,
    ) -> ReferenceRecord:
        """Store an image (content-addressed) and its mask as a reference pair.

        Raises:
            InputError: an unknown split; ImageReadError / MaskError for bad files.
            ConflictError: the image already has another mask or split.
            (In each case nothing is stored.)
        """
        if split not in SPLITS:
            raise InputError(f"split must be train, val or test, got {split!r}")
        max_frames = project.settings.max_frames
        with self.images.staged(project.id, image_chunks, image_name, max_frames) as upload:
            # Decoded from memory and never stored as given: only the canonical PNG is kept.
            mask = decode_mask(
                read_upload(mask_chunks, self.images.limits.max_bytes),
                name=sanitize_filename(mask_name or "mask", "mask"),
                num_foreground=project.settings.label_set.num_foreground,
                expected_shape=(upload.image.height, upload.image.width),
            )
            upload.commit()
        ref = self.blobs.put_bytes(encode_label_map_png(mask))
        with self.db.write() as s:
            image, _ = self.images.record(s, project.id, upload, image_type, user_id)
            return repo.add_reference_pair(
                s,
                project_id=project.id,
                image_id=image.id,
                mask_blob_key=ref.key,
                mask_sha256=ref.sha256,
                split=split,
            )

    def recent(self, project_id: str, split: str | None = None) -> list[ReferenceRecord]:
        """The project's reference pairs, oldest first; with ``split``, only that split."""
        with self.db.read() as s:
            return [pair for pair, _ in repo.list_reference_pairs(s, project_id, split)]
