"""Batched inference run by the request threads: lanes for ONNX Runtime, one for PyTorch."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from medloop.domain.image import Image
from medloop.ml.batcher import InferenceBatcher


class _Stub:
    """Stands in for a Predictor: records how many of its batches run at once."""

    def __init__(self, runtime: str) -> None:
        self.runtime = runtime
        self.active = 0
        self.peak = 0
        self.sizes: list[int] = []
        self._lock = threading.Lock()

    def predict_many(self, images: list[Image]) -> list[Any]:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.sizes.append(len(images))
        time.sleep(0.05)
        with self._lock:
            self.active -= 1
        return [float(im.pixels.mean()) for im in images]


def _run(batcher: InferenceBatcher, stub: _Stub, n: int) -> list[Any]:
    images = [Image(pixels=np.full((4, 4, 1), i, np.uint8)) for i in range(n)]
    out: list[Any] = [None] * n
    start = threading.Barrier(n)

    def request(i: int) -> None:
        start.wait()
        out[i] = batcher.predict(stub, images[i])  # type: ignore[arg-type]

    threads = [threading.Thread(target=request, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_onnx_predictors_run_one_batch_per_lane_at_once() -> None:
    stub = _Stub("onnxruntime")
    out = _run(InferenceBatcher(max_batch=4, lanes=2), stub, 12)
    assert out == [float(i) for i in range(12)]  # each request gets its own result
    assert stub.peak == 2 and max(stub.sizes) <= 4 and sum(stub.sizes) == 12


def test_torch_predictors_share_one_lane() -> None:
    stub = _Stub("torch")
    out = _run(InferenceBatcher(max_batch=8, lanes=4), stub, 10)
    assert out == [float(i) for i in range(10)]
    assert stub.peak == 1 and len(stub.sizes) < 10  # batched, never two at once
