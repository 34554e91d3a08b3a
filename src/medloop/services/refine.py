"""Correct with clicks: refine an analysis, or segment an image, with a click-guided model.

Nothing here is stored: a refine is not a correction (only a submitted mask is). One
clinician's interaction with one analysis is kept in memory for :attr:`Refinements.ttl_s`
after its last click, keyed by (project, analysis, user): the prepared image
(:class:`~medloop.ml.interactive.RefineSession`), the automatic label map it started
from, and the clicks so far. Each request adds its clicks to those (``reset`` starts
over), and the model reruns on a window around all of them. At most
:attr:`Refinements.max_sessions` interactions are kept; the least recently used goes
first.

The model runs in the analyses' executor (:meth:`Analyses.submit`, so a user's
refines count against the same limit as analyses), never on the event loop. The model
version is the analysis's own; a version trained without guidance channels answers
with :class:`~medloop.errors.ConflictError`.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from medloop.domain.clicks import Box, Guidance, check_guidance
from medloop.domain.records import AnalysisRecord, ProjectRecord
from medloop.errors import ConflictError, GuidanceError, NotFoundError
from medloop.io import decode_mask, encode_label_map_png
from medloop.io.volumes import encode_label_volume
from medloop.services.analyses import Analyses
from medloop.services.model_pool import ModelPool
from medloop.services.refine_cache import Interaction, SessionCache
from medloop.services.refine_volume import (
    ChangedBlock,
    LabelDice,
    VolumeLabels,
    changed_block,
    label_dice,
    union,
)
from medloop.services.volume_view import LabelFile, label_file
from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobStore
from medloop.storage.database import Database

if TYPE_CHECKING:
    from medloop.domain.image import Image
    from medloop.ml.inference import Predictor

__all__ = [
    "Interaction",
    "LabelDice",
    "RefineOutcome",
    "Refinements",
    "SessionCache",
    "label_dice",
]

NOT_INTERACTIVE = "this version was not trained for clicks; train with training.interactive=true"


@dataclass(frozen=True)
class RefineOutcome:
    """The label map after all clicks so far: for a 2D image the whole map as an 8-bit
    gray PNG (value = label) in ``png``; for a volume (``shape`` ``(X, Y, Z)``) only the
    block this request changed, in ``block``.

    ``dice`` is per label against the automatic prediction (``None`` when segmenting an
    image from scratch); ``clicks`` counts the interaction's clicks so far.
    """

    png: bytes | None
    shape: tuple[int, ...]
    model_version: str
    image_id: str
    frame: int
    clicks: int
    box: Box | None
    dice: tuple[LabelDice, ...] | None
    changed_pixels: int | None
    analysis_id: str | None = None
    block: ChangedBlock | None = None


def _grid(volume: Image) -> Image:
    """``volume``'s geometry (shape, affine, orientation) without its voxels: enough to
    write a label volume on its grid, and a CT's 300 MB of voxels are not kept."""
    empty = np.broadcast_to(np.zeros((1,) * volume.pixels.ndim, np.uint8), volume.pixels.shape)
    return replace(volume, pixels=empty)


class Refinements:
    """Refine analyses and segment images with clicks (see the module doc).

    Args:
        db: the database.
        blobs: where the analyses' label maps are.
        analyses: its executor runs the model, its images decode the pixels.
        models: the predictors.
        cache: the interactions kept between requests.
    """

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        analyses: Analyses,
        models: ModelPool,
        cache: SessionCache | None = None,
    ) -> None:
        self.db, self.blobs, self.analyses, self.models = db, blobs, analyses, models
        self.cache = cache if cache is not None else SessionCache()

    def refine(
        self,
        project: ProjectRecord,
        analysis_id: str,
        user_id: str | None,
        guidance: Guidance,
        reset: bool = False,
    ) -> Future[RefineOutcome]:
        """Add ``guidance``'s clicks (and box) to the interaction with the analysis and
        rerun the model, in the analyses' executor.

        The future raises NotFoundError (no such analysis), ConflictError (a version
        without guidance channels) or GuidanceError (clicks that do not fit; the
        interaction is left as it was).

        Raises:
            TooMuchWork: the user has as many analyses waiting or running as allowed.
        """
        return self.analyses.submit(
            user_id, lambda: self._refine(project, analysis_id, user_id, guidance, reset)
        )

    def segment(
        self,
        project: ProjectRecord,
        image_id: str,
        user_id: str | None,
        guidance: Guidance,
        frame: int = 0,
    ) -> Future[RefineOutcome]:
        """Segment a stored image (frame ``frame``) from clicks or a box alone, with the
        production version, in the analyses' executor. Nothing is kept between requests."""
        return self.analyses.submit(
            user_id, lambda: self._segment(project, image_id, guidance, frame)
        )

    def labels(self, project: ProjectRecord, analysis_id: str, user_id: str | None) -> LabelFile:
        """The caller's refined label map of the analysis as it stands: an 8-bit gray PNG
        (2D) or a gzipped NIfTI on the input volume's grid and affine (a volume).

        Raises:
            NotFoundError: no live interaction of this user with this analysis.
        """
        key = (project.id, analysis_id, user_id or "")
        item = self.cache.find(key)
        if item is None or item.session is None or item.automatic is None:
            raise NotFoundError(
                f"no refine of analysis {analysis_id} in the last {self.cache.ttl_s:.0f} s: "
                "click first (POST .../refine)"
            )
        with item.lock:
            if item.volume is not None and item.image is not None:
                current = item.volume.current
                return label_file(encode_label_volume(current, item.image), analysis_id)
            labels = item.labels if item.labels is not None else item.automatic
            return label_file(encode_label_map_png(labels), analysis_id)

    # -- in the executor -------------------------------------------------------------

    def _interactive(self, project_id: str, version: str | None) -> tuple[str, Predictor]:
        name, predictor = self.models.resolve(project_id, version)
        if predictor.manifest.guidance is None:
            raise ConflictError(f"{name}: {NOT_INTERACTIVE}")
        return name, predictor

    def _pixels(self, project_id: str, image_id: str, frame: int) -> Image:
        image = self.analyses.images.get(project_id, image_id)
        if not 0 <= frame < image.frames:
            raise GuidanceError(f"the image has frames 0..{image.frames - 1}, not {frame}")
        return self.analyses.images.pixels(image, frame)

    def _start(self, project: ProjectRecord, analysis: AnalysisRecord) -> Interaction:
        """A new interaction with the analysis: its image prepared, its label map read."""
        from medloop.ml.interactive import RefineSession

        _, predictor = self._interactive(project.id, analysis.model_version)
        pixels = self._pixels(project.id, analysis.image_id, analysis.frame)
        k = project.settings.label_set.num_foreground
        data = self.blobs.read_bytes(analysis.label_blob_key, analysis.label_sha256)
        if pixels.is_volume:
            automatic = decode_mask(data, name="label map", num_foreground=k, image=pixels)
        else:
            automatic = decode_mask(
                data, name="label map", num_foreground=k, expected_shape=pixels.shape
            )
        return Interaction(
            model_version=analysis.model_version,
            image_id=analysis.image_id,
            frame=analysis.frame,
            session=RefineSession(predictor, pixels, automatic),
            automatic=automatic,
            volume=VolumeLabels(automatic, k) if pixels.is_volume else None,
            image=_grid(pixels) if pixels.is_volume else None,
        )

    def _refine(
        self,
        project: ProjectRecord,
        analysis_id: str,
        user_id: str | None,
        guidance: Guidance,
        reset: bool,
    ) -> RefineOutcome:
        key = (project.id, analysis_id, user_id or "")
        with self.db.read() as s:  # 404 before anything is kept
            analysis = repo.get_analysis(s, analysis_id, project.id)
        pending = Interaction(analysis.model_version, analysis.image_id, analysis.frame)
        item = self.cache.get(key, lambda: pending)
        with item.lock:
            if item.session is None:
                try:
                    started = self._start(project, analysis)
                except BaseException:
                    self.cache.drop(key)
                    raise
                item.adopt(started)
            assert item.session is not None and item.automatic is not None
            clicks = ([] if reset else list(item.clicks)) + list(guidance.clicks)
            box = guidance.box or (None if reset else item.box)
            total = Guidance(tuple(clicks), box)
            k = project.settings.label_set.num_foreground
            check_guidance(total, item.session.shape, k)  # before anything changes
            names = [lab.name for lab in project.settings.label_set.labels]
            if item.volume is not None:
                out = self._refine_volume(item, item.volume, total, guidance, reset, names)
            else:
                out = self._refine_2d(item, total, names)
            item.clicks, item.box = clicks, box
        return replace(out, analysis_id=analysis_id, clicks=len(clicks), box=box)

    def _refine_2d(self, item: Interaction, total: Guidance, names: list[str]) -> RefineOutcome:
        assert item.session is not None and item.automatic is not None
        session = item.session
        labels = item.automatic if total.empty else session.refine(total).prediction.label_map
        item.labels = labels
        return RefineOutcome(
            png=encode_label_map_png(labels),
            shape=tuple(int(s) for s in labels.shape),
            model_version=item.model_version,
            image_id=item.image_id,
            frame=item.frame,
            clicks=len(total.clicks),
            box=total.box,
            dice=label_dice(labels, item.automatic, names),
            changed_pixels=int((labels != item.automatic).sum()),
        )

    def _refine_volume(
        self,
        item: Interaction,
        volume: VolumeLabels,
        total: Guidance,
        new: Guidance,
        reset: bool,
        names: list[str],
    ) -> RefineOutcome:
        """Infer a window around the request's new clicks (and box), merge it into the
        interaction's label volume; the answer carries only the changed block."""
        assert item.session is not None
        block = None if new.empty else item.session.refine_block(total, new)
        region = volume.reset() if reset else None  # after the model: nothing half-done
        if block is not None:
            region = union(region, volume.paste(block.window, block.labels))
        return RefineOutcome(
            png=None,
            shape=tuple(int(s) for s in volume.current.shape),
            model_version=item.model_version,
            image_id=item.image_id,
            frame=item.frame,
            clicks=len(total.clicks),
            box=total.box,
            dice=volume.dice(names),
            changed_pixels=volume.changed,
            block=changed_block(volume.current, region),
        )

    def _segment(
        self, project: ProjectRecord, image_id: str, guidance: Guidance, frame: int
    ) -> RefineOutcome:
        from medloop.ml.interactive import RefineSession

        if guidance.empty:
            raise GuidanceError("segmenting an image needs clicks or a box")
        name, predictor = self._interactive(project.id, None)
        pixels = self._pixels(project.id, image_id, frame)
        check_guidance(guidance, pixels.shape, project.settings.label_set.num_foreground)
        session = RefineSession(predictor, pixels, None)
        png, block = None, None
        if pixels.is_volume:  # only the window around the guidance; the rest is background
            part = session.refine_block(guidance, guidance)
            block = changed_block(part.labels, tuple(slice(0, s) for s in part.labels.shape))
            block = replace(block, offset=tuple(w.start for w in part.window))
        else:
            png = encode_label_map_png(session.refine(guidance).prediction.label_map)
        return RefineOutcome(
            png=png,
            shape=tuple(int(s) for s in pixels.shape),
            model_version=name,
            image_id=image_id,
            frame=frame,
            clicks=len(guidance.clicks),
            box=guidance.box,
            dice=None,
            changed_pixels=None,
            block=block,
        )
