"""The server's :class:`~medloop.domain.ports.TrainingData`: reference pairs and corrections
from the database, their pixels from the blob store.

Nothing is written for the engine: images and masks are read from their blobs
(checked against their sha256) when the engine asks, and a frame of a multi-frame
DICOM image is decoded from the stored file itself.

- reference pairs: every pair of the project with its split; the key is the pair's id.
- corrections: the latest correction of each image (each frame of a multi-frame
  image), oldest first; the key is the correction's id.
"""

from __future__ import annotations

from dataclasses import dataclass

from medloop.domain.ports import CorrectionSample, LoadedPair, PairSample
from medloop.errors import BlobCorrupt, TrainingError
from medloop.io import decode_image, decode_mask
from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobStore
from medloop.storage.database import Database

__all__ = ["DbTrainingData"]


@dataclass(frozen=True)
class _Where:
    """Where a sample's bytes are."""

    name: str
    image_key: str
    image_sha256: str
    mask_key: str
    mask_sha256: str
    frame: int


class DbTrainingData:
    """One project's training data on the server (see the module doc).

    Args:
        db: the database.
        blobs: the blob store.
        project_id: the project.
        num_foreground: K, the project's number of foreground labels (masks are checked).
        max_pixels: images with more pixels are refused.
    """

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        project_id: str,
        num_foreground: int,
        max_pixels: int = 100_000_000,
    ) -> None:
        self.db, self.blobs, self.project_id = db, blobs, project_id
        self.num_foreground, self.max_pixels = num_foreground, max_pixels
        self._where: dict[str, _Where] = {}

    def reference(self) -> list[PairSample]:
        with self.db.read() as s:
            pairs = repo.list_reference_pairs(s, self.project_id)
        out = []
        for pair, image in pairs:
            self._where[pair.id] = _Where(
                image.filename,
                image.blob_key,
                image.sha256,
                pair.mask_blob_key,
                pair.mask_sha256,
                0,
            )
            out.append(PairSample(pair.id, image.sha256, pair.mask_sha256, split=pair.split))
        return out

    def corrections(self) -> list[CorrectionSample]:
        with self.db.read() as s:
            rows = repo.list_corrections(s, self.project_id)
            images = repo.get_images(s, self.project_id, {c.image_id for c in rows})
        latest = {(c.image_id, c.frame): c for c in rows}  # rows come in seq order
        out = []
        for c in sorted(latest.values(), key=lambda c: c.seq):
            image = images[c.image_id]
            self._where[c.id] = _Where(
                f"correction {c.id}",
                image.blob_key,
                image.sha256,
                c.mask_blob_key,
                c.mask_sha256,
                c.frame,
            )
            out.append(
                CorrectionSample(
                    key=c.id,
                    image_sha256=image.sha256,
                    mask_sha256=c.mask_sha256,
                    frame=c.frame,
                    id=c.id,
                    seq=c.seq,
                    held_out=c.held_out,
                    author=c.author_name or "system",
                    corrects_version=c.model_version,
                )
            )
        return out

    def load(self, sample: PairSample) -> LoadedPair:
        if sample.key not in self._where:
            self.corrections() if isinstance(sample, CorrectionSample) else self.reference()
        where = self._where.get(sample.key)
        if where is None:
            raise TrainingError(f"training pair {sample.key!r} is gone from the project")
        if (where.image_sha256, where.mask_sha256) != (sample.image_sha256, sample.mask_sha256):
            raise TrainingError(f"{where.name}: its image or mask changed since it was listed")
        try:
            image_bytes = self.blobs.read_bytes(where.image_key, where.image_sha256)
            mask_bytes = self.blobs.read_bytes(where.mask_key, where.mask_sha256)
        except BlobCorrupt as err:
            raise TrainingError(f"{where.name}: {err}") from err
        image = decode_image(
            image_bytes, name=where.name, max_pixels=self.max_pixels, frame=where.frame
        )
        mask = decode_mask(
            mask_bytes,
            name=f"{where.name} (mask)",
            num_foreground=self.num_foreground,
            expected_shape=image.shape,
        )
        return LoadedPair(sample, image, mask)
