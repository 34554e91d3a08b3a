"""Batch the analyses that wait at the same time into shared forward passes.

Request threads call :meth:`InferenceBatcher.predict` and block; one model thread
takes the first waiting request plus whatever else is queued (up to ``max_batch``),
groups them by predictor and runs :meth:`Predictor.predict_many`. Nothing waits for
a batch to fill: a lone request runs at once.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import cast

from medloop.domain.image import Image
from medloop.ml.inference import Prediction, Predictor

__all__ = ["InferenceBatcher"]

log = logging.getLogger(__name__)

_STOP = object()


class InferenceBatcher:
    """One model thread serving many request threads."""

    def __init__(self, max_batch: int = 8) -> None:
        self.max_batch = max_batch
        self._q: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="medloop-inference", daemon=True)
        self._thread.start()
        self.batches = 0
        self.items = 0

    def predict(self, predictor: Predictor, image: Image) -> Prediction:
        fut: Future[Prediction] = Future()
        self._q.put((predictor, image, fut))
        return fut.result()

    def close(self) -> None:
        self._q.put(_STOP)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._q.get()
            if first is _STOP:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    self._q.put(_STOP)
                    break
                batch.append(nxt)
            groups: dict[int, list[tuple[Predictor, Image, Future[Prediction]]]] = {}
            for item in batch:
                request = cast(tuple[Predictor, Image, "Future[Prediction]"], item)
                groups.setdefault(id(request[0]), []).append(request)
            for items in groups.values():
                self.batches += 1
                self.items += len(items)
                try:
                    results = items[0][0].predict_many([img for _, img, _ in items])
                except Exception as err:
                    log.exception("inference failed")
                    for _, _, fut in items:
                        fut.set_exception(err)
                    continue
                for (_, _, fut), res in zip(items, results, strict=True):
                    fut.set_result(res)
