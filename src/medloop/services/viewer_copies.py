"""The viewer's copies of a volume and of its label maps, prepared when the volume is
analysed, so that the viewer's first open only sends them.

The browser's viewer fetches a whole volume once, as one gzip stream in viewer order
(:mod:`medloop.services.voxels`). Making that stream from the stored file means decoding
the file and compressing its voxels: for a 512 x 512 x 300 CT, 2.7 s and 2.3 s on two
cores, more than the viewer's whole budget for a first open. Production viewers prepare
their copy at ingest; so does medloop. Once a volume's analysis is stored,
:meth:`ViewerCopies.prepare` runs in the same worker thread, with the voxels and the label
map the analysis already holds in memory: it stores the image's stream (once per image;
``images.viewer_*``, with its :class:`~medloop.domain.viewer.VoxelHeader`) and the label
map's (``analyses.viewer_*``) as blobs. The voxels route then streams those blobs, their
sha256 checked as every blob read is.

A copy is an optimisation, never a requirement: a failure is logged, leaves no row
pointing to anything partial (blobs that no row took are removed), and the route falls
back to decoding, keeping what it made (:meth:`ViewerCopies.keep`) so that a later open,
after a restart or on another replica, finds it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import numpy as np
from sqlalchemy.orm import Session

from medloop.domain.image import Image
from medloop.domain.records import AnalysisRecord, ImageRecord
from medloop.errors import BlobCorrupt
from medloop.services.blob_removal import BlobRemoval
from medloop.services.voxels import VoxelStream, image_stream, label_stream
from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobRef, BlobStore
from medloop.storage.database import Database

__all__ = ["ViewerCopies"]

log = logging.getLogger(__name__)


class ViewerCopies:
    """Store, find and stream the viewer's copies.

    Args:
        db: the database.
        blobs: where the copies are stored.
        removal: removes copies no row took (the image or analysis was erased meanwhile).
    """

    def __init__(self, db: Database, blobs: BlobStore, removal: BlobRemoval) -> None:
        self.db, self.blobs, self.removal = db, blobs, removal

    # -- preparing ----------------------------------------------------------------------

    def prepare(
        self, image: ImageRecord, volume: Image, analysis: AnalysisRecord, labels: np.ndarray
    ) -> None:
        """Store the viewer's copies for a new analysis of a volume: the image's stream
        (unless the image has one) and the label map's. Blocking (compression: about 3 s
        for a 512 x 512 x 300 CT on two cores); never raises (a failure is logged).

        Args:
            image: the analysed image, as read before the analysis.
            volume: its decoded voxels ``(X, Y, Z, C)``; only ``C == 1`` is prepared.
            analysis: the stored analysis.
            labels: its label map ``(X, Y, Z)`` on ``volume``'s canonical grid, uint8.
        """
        if not volume.is_volume or volume.channels != 1:
            return  # the viewer shows single-channel volumes only
        start = time.perf_counter()
        try:
            own, header = None, image.viewer_header
            if header is None:
                made = image_stream(volume)
                own, header = made, made.header
            self.keep(image.id, own, analysis.id, label_stream(labels, header))
            took = time.perf_counter() - start
            what = "image and labels" if own is not None else "labels"
            log.info("viewer copies of image %s (%s) prepared in %.2f s", image.id, what, took)
        except Exception:
            log.exception(
                "could not prepare the viewer's copy of image %s (analysis %s); the viewer "
                "will decode it when opened",
                image.id,
                analysis.id,
            )

    def keep(
        self,
        image_id: str,
        image: VoxelStream | None,
        analysis_id: str | None,
        labels: VoxelStream | None,
    ) -> None:
        """Store ``image`` as the image's copy and ``labels`` as the analysis's (each when
        given and the row has none yet); blocking. Blobs no row took are removed again.

        Raises:
            ConflictError: a blob was removed (an erasure) before the rows pointed to it.
            OSError: the blob store could not write.
        """
        refs: list[BlobRef] = []
        taken: set[str] = set()
        try:
            image_ref = None if image is None else self._put(image.chunks, refs)
            label_ref = None if labels is None else self._put(labels.chunks, refs)
            with self.db.write() as s:
                repo.claim_blobs(s, self.blobs.exists, *(r.key for r in refs))
                pointed = self._point(s, image_id, image, image_ref, analysis_id, label_ref)
            taken = pointed  # committed
        finally:
            left = {r.key for r in refs} - taken
            if left:
                self.removal.remove_unreferenced(left)

    def _put(self, chunks: Iterable[bytes], refs: list[BlobRef]) -> BlobRef:
        ref = self.blobs.put_stream(chunks)
        refs.append(ref)
        return ref

    @staticmethod
    def _point(
        s: Session,
        image_id: str,
        image: VoxelStream | None,
        image_ref: BlobRef | None,
        analysis_id: str | None,
        label_ref: BlobRef | None,
    ) -> set[str]:
        """Point the rows at the stored copies; the keys some row now points to."""
        taken: set[str] = set()
        if image is not None and image_ref is not None:
            head = image.header.to_json()
            if repo.set_image_viewer(s, image_id, image_ref.key, image_ref.sha256, head):
                taken.add(image_ref.key)
        if (
            analysis_id is not None
            and label_ref is not None
            and repo.set_analysis_viewer(s, analysis_id, label_ref.key, label_ref.sha256)
        ):
            taken.add(label_ref.key)
        return taken

    def keep_quietly(
        self,
        image_id: str,
        image: VoxelStream | None,
        analysis_id: str | None = None,
        labels: VoxelStream | None = None,
    ) -> bool:
        """:meth:`keep`, with a failure logged instead of raised (the viewer's fallback
        has already sent the stream: keeping it is only for the next open); whether it
        was stored."""
        try:
            self.keep(image_id, image, analysis_id, labels)
        except Exception:
            log.exception("could not keep the viewer's copy of image %s", image_id)
            return False
        return True

    # -- reading ------------------------------------------------------------------------

    def image(self, image: ImageRecord) -> VoxelStream | None:
        """The image's stored stream, its sha256 checked, read as it is sent; ``None`` when
        it has none, or when it is missing or corrupt (logged: the caller decodes)."""
        if image.viewer_blob_key is None or image.viewer_header is None:
            return None
        chunks = self._open(image.viewer_blob_key, image.viewer_sha256, f"image {image.id}")
        return None if chunks is None else VoxelStream(image.viewer_header, chunks)

    def labels(self, image: ImageRecord, analysis: AnalysisRecord) -> VoxelStream | None:
        """The analysis's stored label stream (as :meth:`image`); ``None`` also when the
        image has no viewer header to describe it."""
        if analysis.viewer_blob_key is None or image.viewer_header is None:
            return None
        what = f"analysis {analysis.id}"
        chunks = self._open(analysis.viewer_blob_key, analysis.viewer_sha256, what)
        return None if chunks is None else VoxelStream(image.viewer_header.labels(), chunks)

    def _open(self, key: str, sha256: str | None, what: str) -> Iterable[bytes] | None:
        try:
            return self.blobs.read_chunks(key, sha256)
        except BlobCorrupt as err:
            log.error("the viewer's copy of %s is unusable (%s); decoding instead", what, err)
            return None
