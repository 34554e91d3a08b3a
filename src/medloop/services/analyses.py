"""Analyses: a model version's result on a stored image (every frame of a multi-frame one)
or volume. A 2D frame's result is stored as an 8-bit label-map PNG; a volume's (a 3D
project's NIfTI or NRRD upload) as ONE gzipped NIfTI label volume on the input file's
own grid (its axis order and affine), with per-class voxels, mm³ and components. A
project takes inputs of its own ``spatial_dims`` only.

Model work blocks: call :meth:`Analyses.create` off the event loop, through
:meth:`Analyses.submit` (the :attr:`Analyses.executor`, whose size bounds how many
analyses load images and store results at once; the model runs in the pool's thread).

The work one request or one user can cause is bounded: a request analyses at most the
project's ``max_frames`` frames (or slices), and a user has at most
``max_queued`` analyses waiting or running at once (a request waiting for a thread
counts as one, a running one as its frames); beyond, :class:`~medloop.errors.TooMuchWork`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from medloop.domain.image import Image
from medloop.domain.measurements import measure
from medloop.domain.records import AnalysisRecord, ImageRecord, ProjectRecord
from medloop.domain.settings import ProjectSettings
from medloop.errors import ImageReadError, TooManyFrames, TooMuchWork
from medloop.io import decode_image, encode_label_map_png
from medloop.io.volumes import encode_label_volume
from medloop.malloc import freed_memory_returned
from medloop.services.images import Images, StagedImage
from medloop.services.model_pool import ModelPool
from medloop.services.series import SERIES_NAME, Unpacked, series_volume, unpack_series
from medloop.services.viewer_copies import ViewerCopies
from medloop.services.volume_view import LabelFile, label_file
from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobStore
from medloop.storage.database import Database

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["Analyses", "AnalysisView", "ReviewItem", "WorkQuota", "check_input"]

T = TypeVar("T")


def check_input(settings: ProjectSettings, image: Image, name: str) -> None:
    """Refuse an image the project cannot analyse: another number of dimensions than its
    ``spatial_dims``, or a volume with more slices (along its third canonical axis) than
    its ``max_frames``.

    Raises:
        ImageReadError: a volume for a 2D project or a 2D image for a 3D project.
        TooManyFrames: too many slices.
    """
    dims = settings.spatial_dims
    if image.ndim != dims:
        what = "a 3D volume" if image.is_volume else "a 2D image"
        takes = "3D volumes (NIfTI, NRRD)" if dims == 3 else "2D images"
        raise ImageReadError(f"{name}: {what}, but this project is {dims}D and takes {takes}")
    if image.is_volume and image.shape[2] > settings.max_frames:
        raise TooManyFrames(
            f"{name}: {image.shape[2]} slices; this project analyses at most "
            f"{settings.max_frames} per request (its max_frames setting)"
        )


class WorkQuota:
    """How many analyses each user has waiting or running, capped at ``limit``.

    Args:
        limit: analyses one user may have at once.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}

    def check(self, user_id: str | None, n: int) -> None:
        """Raise :class:`TooMuchWork` if ``n`` more analyses would pass the limit (counts nothing)."""
        with self.hold(user_id, n):
            pass

    def take(self, user_id: str | None, n: int) -> None:
        """Count ``n`` more analyses for ``user_id`` (``None``: the server itself, uncounted).

        Raises:
            TooMuchWork: that would pass the limit.
        """
        if user_id is None or n <= 0:
            return
        with self._lock:
            held = self._held.get(user_id, 0)
            if held + n > self.limit:
                raise TooMuchWork(
                    f"you have {held} analyses waiting or running and this needs {n} more; "
                    f"at most {self.limit} at once: wait for them to finish"
                )
            self._held[user_id] = held + n

    def give(self, user_id: str | None, n: int) -> None:
        """Count ``n`` analyses of ``user_id`` as finished."""
        if user_id is None or n <= 0:
            return
        with self._lock:
            left = self._held.get(user_id, 0) - n
            if left > 0:
                self._held[user_id] = left
            else:
                self._held.pop(user_id, None)

    @contextlib.contextmanager
    def hold(self, user_id: str | None, n: int) -> Iterator[None]:
        """:meth:`take` for the block, :meth:`give` after it."""
        self.take(user_id, n)
        try:
            yield
        finally:
            self.give(user_id, n)

    def held(self, user_id: str) -> int:
        """Analyses ``user_id`` has waiting or running now."""
        with self._lock:
            return self._held.get(user_id, 0)


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
        max_queued: analyses one user may have waiting or running at once.
        viewer: prepares the browser viewer's copy of each analysed volume (``None``: not).
    """

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        images: Images,
        models: ModelPool,
        threads: int = 8,
        max_queued: int = 1000,
        viewer: ViewerCopies | None = None,
    ) -> None:
        self.db, self.blobs, self.images, self.models = db, blobs, images, models
        self.viewer = viewer
        self.executor = ThreadPoolExecutor(
            max_workers=max(1, threads),
            thread_name_prefix="medloop-analysis",
            initializer=models.request_thread_init,
        )
        self.quota = WorkQuota(max_queued)

    def submit(self, user_id: str | None, work: Callable[[], T]) -> Future[T]:
        """Run ``work`` (one of the ``create*`` calls) in :attr:`executor`.

        While it waits for a thread it counts as one analysis of ``user_id``; once it runs,
        :meth:`analyze_frames` counts its frames.

        Raises:
            TooMuchWork: the user has as many analyses waiting or running as allowed.
        """
        self.quota.take(user_id, 1)
        released = threading.Event()

        def release() -> None:
            if not released.is_set():
                released.set()
                self.quota.give(user_id, 1)

        def run() -> T:
            release()
            return work()

        try:
            future = self.executor.submit(run)
        except BaseException:
            release()
            raise
        future.add_done_callback(lambda _: release())  # cancelled before it ran
        return future

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
        """Store an uploaded image (content-addressed) and :meth:`create` its analysis; a zip
        is a DICOM series (see :meth:`create_series`)."""
        upload = unpack_series(chunks, filename, content_type, self.images.limits, project.settings)
        return self._store_and_analyse(project, upload, user_id)

    def _store_and_analyse(
        self, project: ProjectRecord, upload: Unpacked, user_id: str | None
    ) -> AnalysisRecord:
        image, _ = self.images.ingest(
            project.id,
            upload.chunks,
            upload.filename,
            upload.content_type,
            user_id,
            project.settings.max_frames,
            check=lambda staged: self._check_upload(project, staged, user_id),
            headers=upload.headers,
        )
        return self.create(project, image, None, user_id)

    def create_series(
        self,
        project: ProjectRecord,
        parts: Sequence[tuple[str, Iterable[bytes]]],
        user_id: str | None,
    ) -> AnalysisRecord:
        """Assemble a DICOM series (``(file name, chunks)`` per instance, or one zip of them)
        into a volume, store it as a NIfTI image (with the instances' headers) and
        :meth:`create` its analysis.

        Raises:
            ImageReadError: not a consistent series (see
                :func:`~medloop.services.series.series_volume`), or a 2D project.
            TooManyFrames: more instances than the project's ``max_frames``.
        """
        series = series_volume(parts, self.images.limits, project.settings)
        upload = Unpacked([series.volume], SERIES_NAME, "application/gzip", series.headers)
        return self._store_and_analyse(project, upload, user_id)

    def _check_upload(
        self, project: ProjectRecord, upload: StagedImage, user_id: str | None
    ) -> None:
        check_input(project.settings, upload.image, upload.filename)
        self.quota.check(user_id, upload.frames)

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
            TooManyFrames: more frames than the project's ``max_frames``.
            TooMuchWork: more than the user may have waiting or running.
        """
        wanted = list(range(image.frames)) if frames is None else list(frames)
        limit = project.settings.max_frames
        if len(wanted) > limit:
            raise TooManyFrames(
                f"{image.filename}: {len(wanted)} frames; this project analyses at most "
                f"{limit} per request (its max_frames setting)"
            )
        # A volume's analysis frees many buffers of a few MiB: return them as it goes.
        memory = (
            freed_memory_returned()
            if project.settings.spatial_dims == 3
            else contextlib.nullcontext()
        )
        with self.quota.hold(user_id, len(wanted)), memory:
            return self._analyze(project, image, version, user_id, wanted)

    def _analyze(
        self,
        project: ProjectRecord,
        image: ImageRecord,
        version: str | None,
        user_id: str | None,
        wanted: list[int],
    ) -> list[AnalysisRecord]:
        name, predictor = self.models.resolve(project.id, version)
        labels = project.settings.label_set
        results = []
        for frame, pixels in self._decoded(image, wanted):
            check_input(project.settings, pixels, image.filename)
            pred = self.models.predict(predictor, pixels)
            encoded = (
                encode_label_volume(pred.label_map, pixels)
                if pixels.is_volume
                else encode_label_map_png(pred.label_map)
            )
            ref = self.blobs.put_bytes(encoded)
            figures = [m.to_dict() for m in measure(pred.label_map, labels, pixels.element_size)]
            results.append((frame, ref, pred.uncertainty, figures))
        keys = [r[1].key for r in results]

        def write(s: Session) -> list[AnalysisRecord]:
            repo.claim_blobs(s, self.blobs.exists, *keys)
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

        stored = self.db.grouped(write)
        if self.viewer is not None and stored and pixels.is_volume:  # one frame: the volume
            self.viewer.prepare(image, pixels, stored[-1], pred.label_map)
        return stored

    def _decoded(self, image: ImageRecord, frames: list[int]) -> Iterator[tuple[int, Image]]:
        """``(frame, pixels)`` of each of ``frames`` of ``image``, its file read once and
        let go as soon as the last frame is decoded (a CT volume's file is a quarter of
        its float32 size: not held while it is analysed)."""
        data: bytes | None = self.blobs.read_bytes(image.blob_key, image.sha256)
        limit = self.images.limits.max_pixels
        for n, frame in enumerate(frames):
            assert data is not None
            encoded = data
            if n == len(frames) - 1:
                data = None
            pixels = decode_image(encoded, name=image.filename, max_pixels=limit, frame=frame)
            del encoded
            yield frame, pixels
            del pixels

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

    def mask(self, project_id: str, analysis_id: str) -> LabelFile:
        """The analysis's label map as stored (value = label): an 8-bit gray PNG for a 2D
        image, a gzipped NIfTI (uint8, the input volume's grid and affine) for a volume."""
        with self.db.read() as s:
            analysis = repo.get_analysis(s, analysis_id, project_id)
        data = self.blobs.read_bytes(analysis.label_blob_key, analysis.label_sha256)
        return label_file(data, analysis_id)

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
