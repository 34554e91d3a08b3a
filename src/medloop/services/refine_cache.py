"""The click interactions kept between requests: one per (project, analysis, user),
each for a few minutes after its last use, the least recently used out first.

An :class:`Interaction` holds the prepared image, the automatic label map it started
from, the clicks and box so far and, for a volume, the current label volume.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from medloop.domain.clicks import Box, Click
from medloop.services.refine_volume import VolumeLabels

if TYPE_CHECKING:
    from medloop.domain.image import Image
    from medloop.ml.interactive import RefineSession

__all__ = ["Interaction", "SessionCache"]


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
    volume: VolumeLabels | None = None
    """A volume's current label volume (``None`` for a 2D image)."""
    image: Image | None = None
    """A volume, kept to write the refined label volume on its grid."""
    labels: np.ndarray | None = None
    """A 2D image's label map after the last request."""

    def nbytes(self) -> int:
        """Bytes of the arrays it holds (the prepared image, the label maps)."""
        arrays = [self.automatic, self.labels]
        if self.session is not None:
            arrays += [self.session.x, self.session.start, self.session.start_grid]
        if self.volume is not None:
            arrays += [self.volume.automatic, self.volume.current]
        return sum(int(getattr(a, "nbytes", 0)) for a in arrays if a is not None)

    def adopt(self, started: Interaction) -> None:
        """Take the prepared parts of a freshly started interaction."""
        self.session, self.automatic = started.session, started.automatic
        self.volume, self.image = started.volume, started.image


class SessionCache:
    """Interactions by key, each kept ``ttl_s`` after its last use, at most ``max_size`` of
    them and at most ``max_bytes`` of arrays together (least recently used out first; the
    one in use always stays, so a single CT interaction over the budget still works).
    Thread-safe.

    Args:
        ttl_s: seconds an unused interaction is kept.
        max_size: interactions kept at once.
        max_bytes: bytes of arrays kept at once (a CT interaction holds ~250 MB).
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        ttl_s: float = 300.0,
        max_size: int = 32,
        clock: Callable[[], float] = time.monotonic,
        max_bytes: int = 1 << 30,
    ) -> None:
        self.ttl_s, self.max_size, self.clock = ttl_s, max(1, max_size), clock
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, ...], tuple[float, Interaction]] = OrderedDict()
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        """Drop what has not been used for ``ttl_s``, then the least recently used while
        over ``max_size`` or ``max_bytes`` (never the most recent)."""
        while self._items:
            key, (used, _) = next(iter(self._items.items()))
            if now - used < self.ttl_s:
                break
            del self._items[key]
        total = sum(item.nbytes() for _, item in self._items.values())
        while len(self._items) > 1 and (len(self._items) > self.max_size or total > self.max_bytes):
            _, (_, item) = self._items.popitem(last=False)
            total -= item.nbytes()

    def get(self, key: tuple[str, ...], make: Callable[[], Interaction]) -> Interaction:
        """The live interaction under ``key``, or a new one from ``make()``; either way it
        becomes the most recently used."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            found = self._items.pop(key, None)
            item = make() if found is None else found[1]
            self._items[key] = (now, item)
            self._expire(now)
            return item

    def find(self, key: tuple[str, ...]) -> Interaction | None:
        """The live interaction under ``key`` (now the most recently used), or ``None``."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            found = self._items.pop(key, None)
            if found is None:
                return None
            self._items[key] = (now, found[1])
            self._expire(now)
            return found[1]

    def drop(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._items.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            self._expire(self.clock())
            return len(self._items)
