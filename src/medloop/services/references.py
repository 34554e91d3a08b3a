"""Reference pairs: an image with its ground-truth label map, in a split and a group.

The mask is validated against the image, the project's labels and its dimensions
and kept as the canonical label map (an 8-bit PNG, or a NIfTI volume on the image's
grid), whatever format was uploaded. A pair is stored whole or not at all: the image is
checked, then the mask against it, while both are still private; only then do their
blobs enter the store, and the image row and the pair row are written in one
transaction. A pair may be deleted while no model version has trained on it;
afterwards only an erasure removes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from medloop.domain.records import ImageRecord, ProjectRecord, ReferenceRecord
from medloop.errors import ConflictError, ImageReadError, InputError
from medloop.io import decode_mask, encode_label_map_png
from medloop.io.volumes import encode_label_volume
from medloop.services.blob_removal import BlobRemoval
from medloop.services.images import Images
from medloop.services.series import unpack_series
from medloop.services.uploads import read_upload, sanitize_filename
from medloop.storage import repo_versions
from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobStore
from medloop.storage.database import Database

__all__ = ["ReferenceItem", "ReferencePage", "References", "clean_group"]

SPLITS = ("train", "val", "test")
MAX_GROUP = 64


def clean_group(group: str | None) -> str | None:
    """A pair's group as stored: trimmed, ``None`` when empty.

    Raises:
        InputError: longer than 64 characters, or holding control characters.
    """
    text = (group or "").strip()
    if len(text) > MAX_GROUP or any(ord(c) < 32 for c in text):
        raise InputError(f"a group is at most {MAX_GROUP} printable characters, got {text[:80]!r}")
    return text or None


@dataclass(frozen=True)
class ReferenceItem:
    """A pair with its image and the model versions that trained on it."""

    pair: ReferenceRecord
    image: ImageRecord
    trained_by: tuple[str, ...]


@dataclass(frozen=True)
class ReferencePage:
    """Some of a project's pairs, and how many match in all."""

    items: list[ReferenceItem]
    total: int


class References:
    """Add, list, count and delete a project's reference pairs.

    Args:
        db: the database.
        blobs: where the masks are kept.
        images: where the images go.
        removal: removes blobs a deletion left unused.
    """

    def __init__(
        self, db: Database, blobs: BlobStore, images: Images, removal: BlobRemoval
    ) -> None:
        self.db, self.blobs, self.images, self.removal = db, blobs, images, removal

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
        group: str | None = None,
    ) -> ReferenceRecord:
        """Store an image (content-addressed) and its mask as a reference pair; in a 3D
        project the image may be a zip of a DICOM series (kept as its NIfTI volume).

        Raises:
            InputError: an unknown split or a bad group; ImageReadError / MaskError for
                bad files, or an image of the wrong dimensions. Nothing is stored then.
            ConflictError: the image already has another mask or split.
            (In each case nothing is stored.)
        """
        if split not in SPLITS:
            raise InputError(f"split must be train, val or test, got {split!r}")
        group = clean_group(group)
        settings = project.settings
        max_frames = settings.max_frames
        unpacked = unpack_series(image_chunks, image_name, image_type, self.images.limits, settings)
        image_type = unpacked.content_type
        with self.images.staged(
            project.id, unpacked.chunks, unpacked.filename, max_frames
        ) as upload:
            upload.headers = unpacked.headers
            pixels = upload.image
            if pixels.ndim != settings.spatial_dims:
                raise ImageReadError(
                    f"{upload.filename}: a {pixels.ndim}D image for a "
                    f"{settings.spatial_dims}D project"
                )
            # Decoded from memory and never stored as given: only the canonical form is kept.
            mask = decode_mask(
                read_upload(mask_chunks, self.images.limits.max_bytes),
                name=sanitize_filename(mask_name or "mask", "mask"),
                num_foreground=settings.label_set.num_foreground,
                expected_shape=pixels.shape,
                image=pixels,
            )
            upload.commit()
        canonical = (
            encode_label_volume(mask, pixels) if pixels.is_volume else encode_label_map_png(mask)
        )
        ref = self.blobs.put_bytes(canonical)
        with self.db.write() as s:
            image, _ = self.images.record(s, project.id, upload, image_type, user_id)
            repo.claim_blobs(s, self.blobs.exists, ref.key)
            return repo.add_reference_pair(
                s,
                project_id=project.id,
                image_id=image.id,
                mask_blob_key=ref.key,
                mask_sha256=ref.sha256,
                split=split,
                group=group,
            )

    def recent(self, project_id: str, split: str | None = None) -> list[ReferenceRecord]:
        """The project's reference pairs, oldest first; with ``split``, only that split."""
        with self.db.read() as s:
            return [pair for pair, _ in repo.list_reference_pairs(s, project_id, split)]

    def page(
        self,
        project_id: str,
        split: str | None = None,
        group: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> ReferencePage:
        """Pairs (oldest first) of a split and/or group (``group=""``: without a group)."""
        with self.db.read() as s:
            rows = repo.list_reference_pairs(s, project_id, split, group, limit, offset)
            total = repo.count_reference_pairs(s, project_id, split, group)
            used = repo_versions.trained_on(s, project_id)
        items = [ReferenceItem(p, i, tuple(used.get(p.id, ()))) for p, i in rows]
        return ReferencePage(items, total)

    def summary(self, project_id: str) -> list[tuple[str, str | None, int]]:
        """``(split, group, count)`` of the project's pairs."""
        with self.db.read() as s:
            return repo.reference_summary(s, project_id)

    def delete(self, project: ProjectRecord, pair_id: str) -> ReferenceRecord:
        """Delete a pair no version trained on, its mask, and its image if nothing else uses it.

        Raises:
            NotFoundError: no such pair in the project.
            ConflictError: a model version trained on it (erase the image instead).
        """
        with self.db.write() as s:
            pair = repo.get_reference_pair(s, pair_id, project.id)
            versions = repo_versions.trained_on(s, project.id).get(pair.id)
            if versions:
                raise ConflictError(
                    f"reference pair {pair_id!r} trained {', '.join(versions)}: it can only "
                    "be erased (which keeps those versions' lineage as ids and sha256)"
                )
            _, image = repo.delete_reference_pair(s, project.id, pair_id)
        keys = {pair.mask_blob_key} | ({image.blob_key} if image is not None else set())
        self.removal.remove_unreferenced(keys)
        return pair
