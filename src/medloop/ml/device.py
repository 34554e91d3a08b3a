"""Pick the torch device and CPU threads once, from an explicit request."""

from __future__ import annotations

import os

import torch

__all__ = ["resolve_device", "single_threaded"]


def resolve_device(requested: str | None = None) -> torch.device:
    """``"cuda"``, ``"cpu"`` or ``None``/``"auto"`` (CUDA when available)."""
    if requested in (None, "", "auto"):
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(requested)
    if dev.type == "cpu":
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    return dev


def single_threaded() -> None:
    """Run this thread's torch operations on one core (a per-thread setting).

    A server's request threads each run their own pre- and post-processing beside
    single-threaded ONNX Runtime sessions: one core each, no thread waiting for
    another at a barrier, while a training thread keeps its own setting.
    """
    torch.set_num_threads(1)
