"""Freed large buffers go back to the operating system (glibc) while a volume is analysed.

glibc serves an allocation of at least its *mmap threshold* (128 KiB by default) with a
mapping of its own, unmapped when freed. But the threshold is dynamic: each such buffer
freed raises it to that buffer's size (up to 32 MiB), after which buffers up to that size
come from the heap, whose freed pages stay resident. Analysing a CT-sized volume frees
many buffers of a few MiB (slabs, windows, chunks of the upload) and would keep them
resident through the next steps: the README's "Volumes: upload to result and memory"
measured about one float32 copy of the volume more at the peak.

Fixing the threshold at 128 KiB for good would cost training dearly: its step's buffers
of a few MiB would be mapped, faulted in and unmapped every step (a 2D U-Net's step took
1.85x as long here). So the threshold is low only while some volume is being analysed
(:func:`freed_memory_returned`) and then set to 32 MiB, where glibc's own dynamic
threshold settles once a process has freed a few large buffers.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["MMAP_THRESHOLD", "RELAXED_THRESHOLD", "fix_mmap_threshold", "freed_memory_returned"]

MMAP_THRESHOLD = 128 * 1024
"""Bytes from which an allocation gets its own mapping while a volume is analysed."""
RELAXED_THRESHOLD = 32 * 1024 * 1024
"""The threshold otherwise: glibc's largest dynamic one on 64-bit (training's buffers
come from the heap, as they would without any setting)."""
_M_MMAP_THRESHOLD = -3  # mallopt's parameter, <malloc.h>
_lock = threading.Lock()
_holders = 0


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes for this process; whether it was
    set (``False`` off Linux or without glibc's ``mallopt``: nothing changes)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))


@contextmanager
def freed_memory_returned() -> Iterator[None]:
    """Within: buffers of 128 KiB or more are returned to the system when freed.

    Process-wide, so counted: the threshold goes down when the first holder (thread)
    enters and up to :data:`RELAXED_THRESHOLD` when the last one leaves.
    """
    global _holders
    with _lock:
        _holders += 1
        if _holders == 1:
            fix_mmap_threshold(MMAP_THRESHOLD)
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                fix_mmap_threshold(RELAXED_THRESHOLD)
