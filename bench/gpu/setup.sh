#!/usr/bin/env bash
# On a lent GPU machine (the `device` tool): install the wheels carried in .whl/ into
# /tmp/site (nothing can be fetched there), then show the GPU and time the batch
# sampler with and without worker threads. Run from the repository root.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD/src
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv,noheader
nproc
python3 - <<'PY'
import time

import monai
import numpy as np
import torch

from medloop.ml.data import PatchSampler, TrainItem

print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "monai", monai.__version__)
rng = np.random.default_rng(0)
mask = np.zeros((512, 512), np.uint8)
mask[128:384, 128:384] = 1
items = [TrainItem(f"i{i}", rng.normal(size=(3, 512, 512)).astype(np.float32), mask) for i in range(4)]
for workers in (0, 2, 4):
    sampler = PatchSampler(items, (256, 256), 8, np.random.default_rng(1), workers=workers)
    sampler.next_batch()
    start = time.perf_counter()
    for _ in range(20):
        sampler.next_batch()
    sampler.close()
    print(f"batch of 8 RGB 256² patches, {workers} threads: {(time.perf_counter() - start) / 20 * 1e3:.1f} ms")
PY
