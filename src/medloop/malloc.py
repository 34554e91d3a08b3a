"""Freed large buffers go back to the operating system (glibc), in long-lived processes.

glibc serves an allocation of at least its *mmap threshold* (128 KiB by default) with a
mapping of its own, unmapped when freed. But the threshold is dynamic: each such buffer
freed raises it to that buffer's size (up to 32 MiB), after which buffers up to that size
come from the heap, whose freed pages stay resident. A server that analyses a CT-sized
volume frees many buffers of a few MiB (slabs, windows, chunks of the upload) and would
keep them resident afterwards and during the next steps: the README's "Volumes: upload to
result and memory" measured about one float32 copy of the volume more at the peak. Fixing
the threshold at its default (which also fixes the heap's trim threshold) keeps the
process's resident memory at what it holds.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["MMAP_THRESHOLD", "fix_mmap_threshold"]

MMAP_THRESHOLD = 128 * 1024
"""Bytes from which an allocation gets its own mapping: glibc's default, kept fixed."""
_M_MMAP_THRESHOLD = -3  # mallopt's parameter, <malloc.h>


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
