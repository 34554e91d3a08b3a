"""Pick the torch device and CPU threads once, from an explicit request, and whether
training may run its forward pass in bfloat16."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

__all__ = ["batch_threads", "bf16_is_native", "resolve_device", "single_threaded"]

NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
"""CPU flags (``/proc/cpuinfo``) of instructions that compute bfloat16 dot products in
hardware; without them oneDNN emulates bfloat16, slower than float32."""


def resolve_device(requested: str | None = None) -> torch.device:
    """``"cuda"``, ``"cpu"`` or ``None``/``"auto"`` (CUDA when available)."""
    if requested in (None, "", "auto"):
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(requested)
    if dev.type == "cpu":
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    return dev


@functools.cache
def _cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def bf16_is_native(device: torch.device) -> bool:
    """Whether bfloat16 autocast speeds up training on ``device``.

    CUDA: always (tensor cores). CPU: only where the processor has bfloat16 dot-product
    instructions (AVX512-BF16 or AMX); measured on a 2-core AMD EPYC with AVX512-BF16,
    a 2D U-Net training step takes 0.63-0.75x the float32 time, a 3D one 0.8x.
    """
    if device.type == "cuda":
        return True
    return device.type == "cpu" and bool(_cpu_flags() & NATIVE_BF16_FLAGS)


BATCH_THREADS_CUDA = 4
"""Threads that build training batches ahead beside a GPU, at most (one core each)."""


def batch_threads(device: torch.device) -> int:
    """Threads that build the next training batches while the device trains.

    CPU: none, since the training step already uses every core and a batch takes a
    tenth of its time or less (a 2D batch of eight 256² RGB patches: 44 ms on one core
    of a 2-core AMD EPYC, against 0.4-0.6 s a step). CUDA: up to
    :data:`BATCH_THREADS_CUDA`, one core each, leaving one for the training loop: a GPU
    step of a 2D U-Net is far shorter than building its batch on one core, so the
    GPU would otherwise wait on the CPU.
    """
    if device.type != "cuda":
        return 0
    return max(1, min(BATCH_THREADS_CUDA, (os.cpu_count() or 2) - 1))


def single_threaded() -> None:
    """Run this thread's torch operations on one core (a per-thread setting).

    A server's request threads each run their own pre- and post-processing beside
    single-threaded ONNX Runtime sessions: one core each, no thread waiting for
    another at a barrier, while a training thread keeps its own setting.
    """
    torch.set_num_threads(1)
