#!/usr/bin/env bash
# On a lent GPU machine (the `device` tool): install the wheels carried in .whl/ into
# /tmp/site (nothing can be fetched there), then show the GPU and time the batch
# sampler with and without worker threads. Run from the repository root.
#
# The wheels are made here, on the development machine, for the device's Python 3.12
# (.whl/ is git-ignored; 2026-11-30 these 16 were needed, about 20 MB, the versions
# of .venv):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl monai==V nibabel==V pydantic==V pydantic_core==V annotated-types==V \
#     typing-inspection==V typing_extensions==V SQLAlchemy==V greenlet==V pydicom==V \
#     pynrrd==V cryptography==V cffi==V pycparser==V typer==V click==V
# and each dataset is copied to .gpu/NAME (one dataset per call: 64 MiB at most).
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
