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

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from medloop.domain.clicks import Box, Click, Guidance, check_guidance
from medloop.domain.records import AnalysisRecord, ProjectRecord
from medloop.errors import ConflictError, GuidanceError
from medloop.io import decode_mask, encode_label_map_png
from medloop.services.analyses import Analyses
from medloop.services.model_pool import ModelPool
from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobStore
from medloop.storage.database import Database

if TYPE_CHECKING:
    from medloop.domain.image import Image
    from medloop.ml.inference import Predictor
    from medloop.ml.interactive import RefineSession

__all__ = ["LabelDice", "RefineOutcome", "Refinements", "SessionCache"]

NOT_INTERACTIVE = "this version was not trained for clicks; train with training.interactive=true"


@dataclass(frozen=True)
class LabelDice:
    """One label's Dice between the refined and the automatic label map."""

    label: int
    name: str
    dice: float


@dataclass(frozen=True)
class RefineOutcome:
    """The label map after all clicks so far, as an 8-bit gray PNG (value = label).

    ``dice`` is per label against the automatic prediction (``None`` when segmenting an
    image from scratch); ``clicks`` counts the interaction's clicks so far.
    """

    png: bytes
    width: int
    height: int
    model_version: str
    image_id: str
    frame: int
    clicks: int
    box: Box | None
    dice: tuple[LabelDice, ...] | None
    changed_pixels: int | None
    analysis_id: str | None = None


@dataclass
class Interaction:
    """One clinician's interaction with one analysis (see the module doc)."""

    model_version: str
    image_id: str
    frame: int
    session: RefineSession | None = None
    automatic: np.ndarray | None = None
    clicks: list[Click] = field(default_factory=list)
    box: Box | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class SessionCache:
    """Interactions by key, each kept ``ttl_s`` after its last use, at most ``max_size``
    (least recently used out first). Thread-safe.

    Args:
        ttl_s: seconds an unused interaction is kept.
        max_size: interactions kept at once.
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        ttl_s: float = 300.0,
        max_size: int = 32,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s, self.max_size, self.clock = ttl_s, max(1, max_size), clock
        self._items: OrderedDict[tuple[str, ...], tuple[float, Interaction]] = OrderedDict()
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        while self._items:
            key, (used, _) = next(iter(self._items.items()))
            if now - used < self.ttl_s:
                return
            del self._items[key]

    def get(self, key: tuple[str, ...], make: Callable[[], Interaction]) -> Interaction:
        """The live interaction under ``key``, or a new one from ``make()``; either way it
        becomes the most recently used."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            found = self._items.pop(key, None)
            item = make() if found is None else found[1]
            self._items[key] = (now, item)
            while len(self._items) > self.max_size:
                self._items.popitem(last=False)
            return item

    def drop(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._items.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            self._expire(self.clock())
            return len(self._items)


def label_dice(
    refined: np.ndarray, automatic: np.ndarray, names: list[str]
) -> tuple[LabelDice, ...]:
    """Each label's Dice (1 where neither map has the label)."""
    out = []
    for label, name in enumerate(names, start=1):
        a, b = refined == label, automatic == label
        denom = int(a.sum() + b.sum())
        dice = 1.0 if denom == 0 else 2.0 * int((a & b).sum()) / denom
        out.append(LabelDice(label, name, dice))
    return tuple(out)


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
        pixels = self.analyses.images.pixels(image, frame)
        if pixels.ndim != 2:
            raise ConflictError("clicks are served for 2D images and frames only")
        return pixels

    def _start(self, project: ProjectRecord, analysis: AnalysisRecord) -> Interaction:
        """A new interaction with the analysis: its image prepared, its label map read."""
        from medloop.ml.interactive import RefineSession

        _, predictor = self._interactive(project.id, analysis.model_version)
        pixels = self._pixels(project.id, analysis.image_id, analysis.frame)
        automatic = decode_mask(
            self.blobs.read_bytes(analysis.label_blob_key, analysis.label_sha256),
            name="label map",
            num_foreground=project.settings.label_set.num_foreground,
            expected_shape=pixels.shape,
        )
        return Interaction(
            model_version=analysis.model_version,
            image_id=analysis.image_id,
            frame=analysis.frame,
            session=RefineSession(predictor, pixels, automatic),
            automatic=automatic,
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
                item.session, item.automatic = started.session, started.automatic
            assert item.session is not None and item.automatic is not None
            clicks = ([] if reset else list(item.clicks)) + list(guidance.clicks)
            box = guidance.box or (None if reset else item.box)
            total = Guidance(tuple(clicks), box)
            k = project.settings.label_set.num_foreground
            check_guidance(total, item.session.shape, k)  # before anything changes
            if total.empty:
                labels = item.automatic
            else:
                labels = item.session.refine(total).prediction.label_map
            item.clicks, item.box = clicks, box
        names = [lab.name for lab in project.settings.label_set.labels]
        return RefineOutcome(
            png=encode_label_map_png(labels),
            width=int(labels.shape[1]),
            height=int(labels.shape[0]),
            model_version=item.model_version,
            image_id=item.image_id,
            frame=item.frame,
            clicks=len(clicks),
            box=box,
            dice=label_dice(labels, item.automatic, names),
            changed_pixels=int((labels != item.automatic).sum()),
            analysis_id=analysis_id,
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
        labels = RefineSession(predictor, pixels, None).refine(guidance).prediction.label_map
        return RefineOutcome(
            png=encode_label_map_png(labels),
            width=int(labels.shape[1]),
            height=int(labels.shape[0]),
            model_version=name,
            image_id=image_id,
            frame=frame,
            clicks=len(guidance.clicks),
            box=guidance.box,
            dice=None,
            changed_pixels=None,
        )
