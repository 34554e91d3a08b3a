"""Analyses: a model version's result on a stored image (every frame of a multi-frame one).

Model work blocks: call :meth:`Analyses.create` off the event loop, e.g. in
:attr:`Analyses.executor`, whose size bounds how many analyses load images and store
results at once (the model itself runs in the pool's one model thread).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from medloop.domain.measurements import measure
from medloop.domain.records import AnalysisRecord, ImageRecord, ProjectRecord
from medloop.io import decode_image, encode_label_map_png
from medloop.services.images import Images
from medloop.services.model_pool import ModelPool
from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobStore
from medloop.storage.database import Database

__all__ = ["Analyses", "AnalysisView", "ReviewItem"]


@dataclass(frozen=True)
class AnalysisView:
    """An analysis and whether a clinician corrected it yet."""

    analysis: AnalysisRecord
    corrected: bool


@dataclass(frozen=True)
class ReviewItem:
    """An uncorrected analysis in the review queue, with its image."""

    analysis: AnalysisRecord
    image: ImageRecord


class Analyses:
    """Analyse images and read the results back.

    Args:
        db: the database.
        blobs: where label maps are stored.
        images: the project's images.
        models: the predictors.
        threads: size of :attr:`executor`.
    """

    def __init__(
        self, db: Database, blobs: BlobStore, images: Images, models: ModelPool, threads: int = 8
    ) -> None:
        self.db, self.blobs, self.images, self.models = db, blobs, images, models
        self.executor = ThreadPoolExecutor(
            max_workers=max(1, threads), thread_name_prefix="medloop-analysis"
        )

    def close(self) -> None:
        """Finish the analyses in flight and stop the executor."""
        self.executor.shutdown(wait=True, cancel_futures=False)

    def create(
        self,
        project: ProjectRecord,
        image: ImageRecord,
        version: str | None,
        user_id: str | None,
        frame: int | None = None,
    ) -> AnalysisRecord:
        """Analyse a stored image with ``version`` (default production); blocking.

        Without ``frame``, a multi-frame image has every frame analysed (one analysis
        each) and frame 0's analysis is returned; see :meth:`analyze_frames`.
        """
        frames = None if frame is None else [frame]
        return self.analyze_frames(project, image, version, user_id, frames)[0]

    def create_for(
        self, project: ProjectRecord, image_id: str, version: str | None, user_id: str | None
    ) -> AnalysisRecord:
        """:meth:`create` for the project's image ``image_id``."""
        return self.create(project, self.images.get(project.id, image_id), version, user_id)

    def create_upload(
        self,
        project: ProjectRecord,
        chunks: Iterable[bytes],
        filename: str,
        content_type: str,
        user_id: str | None,
    ) -> AnalysisRecord:
        """Store an uploaded image (content-addressed) and :meth:`create` its analysis."""
        image, _ = self.images.ingest(project.id, chunks, filename, content_type, user_id)
        return self.create(project, image, None, user_id)

    def analyze_frames(
        self,
        project: ProjectRecord,
        image: ImageRecord,
        version: str | None,
        user_id: str | None,
        frames: Sequence[int] | None = None,
    ) -> list[AnalysisRecord]:
        """Analyse frames of a stored image with one model version; one analysis per frame.

        The file is read once and decoded a frame at a time; the analyses are recorded
        together, so either every frame has its analysis or none has.

        Raises:
            NoProductionModel: no ``version`` given and nothing in production.
            ImageReadError: a frame the image does not have.
        """
        wanted = list(range(image.frames)) if frames is None else list(frames)
        name, predictor = self.models.resolve(project.id, version)
        data = self.blobs.read_bytes(image.blob_key, image.sha256)
        labels = project.settings.label_set
        results = []
        for frame in wanted:
            pixels = decode_image(
                data, name=image.filename, max_pixels=self.images.limits.max_pixels, frame=frame
            )
            pred = self.models.predict(predictor, pixels)
            ref = self.blobs.put_bytes(encode_label_map_png(pred.label_map))
            figures = [m.to_dict() for m in measure(pred.label_map, labels, pixels.pixel_area_mm2)]
            results.append((frame, ref, pred.uncertainty, figures))
        with self.db.write() as s:
            repo.claim_blobs(s, self.blobs.exists, *(r[1].key for r in results))
            return [
                repo.create_analysis(
                    s,
                    project_id=project.id,
                    image_id=image.id,
                    model_version=name,
                    label_blob_key=ref.key,
                    label_sha256=ref.sha256,
                    uncertainty=uncertainty,
                    measurements=figures,
                    created_by=user_id,
                    frame=frame,
                )
                for frame, ref, uncertainty, figures in results
            ]

    def get(self, project_id: str, analysis_id: str) -> AnalysisView:
        """One analysis of the project and whether it was corrected."""
        with self.db.read() as s:
            analysis = repo.get_analysis(s, analysis_id, project_id)
            corrected = bool(repo.corrected_analyses(s, [analysis_id]))
        return AnalysisView(analysis, corrected)

    def recent(self, project_id: str, limit: int = 50, offset: int = 0) -> list[AnalysisView]:
        """The project's analyses, newest first (``limit`` 1..500)."""
        with self.db.read() as s:
            rows = repo.list_analyses(
                s, project_id, limit=min(max(limit, 1), 500), offset=max(offset, 0)
            )
            corrected = repo.corrected_analyses(s, [a.id for a in rows])
        return [AnalysisView(a, a.id in corrected) for a in rows]

    def mask(self, project_id: str, analysis_id: str) -> bytes:
        """The analysis's label map as stored: an 8-bit gray PNG, value = label."""
        with self.db.read() as s:
            analysis = repo.get_analysis(s, analysis_id, project_id)
        return self.blobs.read_bytes(analysis.label_blob_key, analysis.label_sha256)

    def review_queue(
        self, project_id: str, limit: int = 20, offset: int = 0
    ) -> tuple[list[ReviewItem], int]:
        """Uncorrected analyses, most uncertain first (``limit`` 1..200), and how many there are."""
        with self.db.read() as s:
            rows = repo.review_queue(
                s, project_id, limit=min(max(limit, 1), 200), offset=max(offset, 0)
            )
            total = repo.review_queue_size(s, project_id)
        return [ReviewItem(a, i) for a, i in rows], total
