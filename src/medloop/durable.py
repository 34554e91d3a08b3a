"""Crash-safe file writes and content hashes: the one copy every layer uses.

A reader never sees a half-written file: data goes to a temporary file in the
destination's directory, is flushed and fsynced, then renamed over the target
with :func:`os.replace` (atomic on POSIX and Windows), and finally the directory
entry itself is fsynced so the rename survives a power cut.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["atomic_write_bytes", "atomic_write_json", "fsync_dir", "sha256_bytes", "sha256_file"]

_CHUNK = 1024 * 1024  # 1 MiB


def fsync_dir(path: str | Path) -> None:
    """Flush a directory's entries (renames, creations) to disk.

    Args:
        path: the directory. A no-op on platforms that cannot open directories
            (Windows), where renames are already durable enough.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows cannot open directories
        return
    try:
        with contextlib.suppress(OSError):  # some file systems refuse fsync on dirs
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, replacing any existing file.

    Args:
        path: destination file; its parent directory must exist.
        data: the complete file content.

    Raises:
        OSError: the directory is missing or not writable, or the disk is full.
            No temporary file is left behind in that case.
    """
    target = Path(path)
    directory = target.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    fsync_dir(directory)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """:func:`atomic_write_bytes` of ``obj`` as indented, key-sorted JSON with a final newline."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 digest of ``data`` (64 lowercase hex characters)."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 digest of a file's content, read in 1 MiB chunks.

    Args:
        path: the file to hash.

    Returns:
        64 lowercase hex characters.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
