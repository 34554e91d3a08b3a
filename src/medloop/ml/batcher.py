"""Batch the analyses that wait at the same time into shared forward passes.

Request threads call :meth:`InferenceBatcher.predict`. The first one runs the model
itself; requests that arrive while it runs wait, and the next of them runs all of
theirs at once (up to ``max_batch``), grouped by predictor, with
:meth:`Predictor.predict_many` (:class:`~medloop.combine.Combiner`). Nothing waits
for a batch to fill, and no request is handed to another thread: a lone request runs
at once in its own thread.
"""

from __future__ import annotations

import logging
import threading

from medloop.combine import Combiner, Failed
from medloop.domain.image import Image
from medloop.ml.inference import Prediction, Predictor

__all__ = ["InferenceBatcher"]

log = logging.getLogger(__name__)

_Request = tuple[Predictor, Image]


class InferenceBatcher:
    """Many request threads sharing forward passes, in ``lanes`` batches at once."""

    def __init__(self, max_batch: int = 8, lanes: int = 1) -> None:
        self._lanes: list[Combiner[_Request, Prediction]] = [
            Combiner(self._run, max_batch) for _ in range(max(1, lanes))
        ]
        self._waiting = [0] * len(self._lanes)
        self._lock = threading.Lock()

    @property
    def max_batch(self) -> int:
        return self._lanes[0].max_batch

    @property
    def batches(self) -> int:
        return sum(lane.batches for lane in self._lanes)

    @property
    def items(self) -> int:
        return sum(lane.items for lane in self._lanes)

    def predict(self, predictor: Predictor, image: Image) -> Prediction:
        with self._lock:
            if predictor.runtime == "torch":
                lane = 0
            else:
                lane = min(range(len(self._lanes)), key=self._waiting.__getitem__)
            self._waiting[lane] += 1
        try:
            return self._lanes[lane].submit((predictor, image))
        finally:
            with self._lock:
                self._waiting[lane] -= 1

    def close(self) -> None:
        """Nothing to stop: the callers run the model."""

    def _run(self, batch: list[_Request]) -> list[Prediction | Failed]:
        out: list[Prediction | Failed | None] = [None] * len(batch)
        groups: dict[int, list[int]] = {}
        for i, (predictor, _) in enumerate(batch):
            groups.setdefault(id(predictor), []).append(i)
        for idx in groups.values():
            predictor = batch[idx[0]][0]
            try:
                results: list[Prediction | Failed] = list(
                    predictor.predict_many([batch[i][1] for i in idx])
                )
            except Exception as err:
                log.exception("inference failed")
                results = [Failed(err)] * len(idx)
            for i, res in zip(idx, results, strict=True):
                out[i] = res
        return [r for r in out if r is not None]
