"""A content-addressed blob store on the local file system.

Layout under ``root``::

    tmp/                          uploads being written (swept at start)
    ab/cd/abcd...ef               a blob, named by the sha256 of its bytes

A blob is written to ``tmp/``, hashed while written, fsynced, then renamed to its
final name and the directory fsynced: a crash leaves a complete blob or a temporary
file, never a half-written blob. The caller commits the database row that points to
the blob *after* ``put_*`` returns; blobs no row references (a crash between the two)
are removed by :meth:`BlobStore.sweep_orphans`. Reads check the sha256.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from medloop.durable import fsync_dir, sha256_file
from medloop.errors import BlobCorrupt, InputError, UploadTooLarge

__all__ = ["BlobCorrupt", "BlobRef", "BlobStore", "UploadTooLarge"]

logger = logging.getLogger(__name__)

_KEY = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
_TMP = "tmp"


@dataclass(frozen=True)
class BlobRef:
    """A stored blob: its key (the sha256 hex of its bytes), sha256 and size in bytes."""

    key: str
    sha256: str
    size: int


class StagedBlob:
    """An upload written and hashed but not yet in the store (see :meth:`BlobStore.staged`)."""

    def __init__(self, store: BlobStore, path: Path, sha256: str, size: int) -> None:
        self.store, self.path, self.sha256, self.size = store, path, sha256, size
        self.ref: BlobRef | None = None

    def commit(self) -> BlobRef:
        """Move the bytes into the store (once); returns their reference."""
        if self.ref is None:
            self.ref = self.store._commit(self.path, self.sha256, self.size)
        return self.ref


class BlobStore:
    """Immutable, content-addressed blobs under ``root``; keys are sha256 hex digests.

    Args:
        root: the store's folder; created if missing.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._tmp = self.root / _TMP
        self._tmp.mkdir(parents=True, exist_ok=True)

    # -- writing ---------------------------------------------------------------------------

    def put_stream(self, chunks: Iterable[bytes], max_bytes: int | None = None) -> BlobRef:
        """Store the concatenated ``chunks``, never holding more than one chunk in memory.

        Args:
            chunks: the content, in pieces of any size.
            max_bytes: refuse content longer than this (``None``: no limit).

        Returns:
            The blob's reference. Storing the same bytes twice gives the same key and
            keeps one copy.

        Raises:
            UploadTooLarge: the content exceeds ``max_bytes``; the temporary file is removed.
        """
        with self.staged(chunks, max_bytes) as staged:
            return staged.commit()

    @contextlib.contextmanager
    def staged(self, chunks: Iterable[bytes], max_bytes: int | None = None) -> Iterator[StagedBlob]:
        """Write ``chunks`` to a private temporary file to look at before storing it.

        Inside the ``with`` block, ``staged.path`` can be read and checked;
        ``staged.commit()`` moves it into the store. A blob never committed is removed
        when the block ends, and no other request ever saw it: validating uploads this
        way cannot pull shared bytes from under a concurrent request.
        """
        fd, tmp_name = tempfile.mkstemp(prefix="upload-", suffix=".tmp", dir=self._tmp)
        tmp = Path(tmp_name)
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise UploadTooLarge(f"upload exceeds the limit of {max_bytes} bytes")
                    digest.update(chunk)
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            staged = StagedBlob(self, tmp, digest.hexdigest(), size)
            yield staged
        finally:
            tmp.unlink(missing_ok=True)

    def _commit(self, tmp: Path, key: str, size: int) -> BlobRef:
        final = self.path(key)
        if final.is_file() and final.stat().st_size == size:
            tmp.unlink()  # dedup: the same bytes are already stored
            os.utime(final)  # fresh again: sweep_orphans' grace period protects it
            return BlobRef(key=key, sha256=key, size=size)
        self._make_dirs(final.parent)
        os.replace(tmp, final)
        fsync_dir(final.parent)
        return BlobRef(key=key, sha256=key, size=size)

    def put_bytes(self, data: bytes, max_bytes: int | None = None) -> BlobRef:
        """Store ``data``; see :meth:`put_stream`."""
        return self.put_stream((data,), max_bytes=max_bytes)

    def put_file(self, path: Path, max_bytes: int | None = None) -> BlobRef:
        """Store a file's content, read in chunks; see :meth:`put_stream`."""
        with open(path, "rb") as fh:
            return self.put_stream(iter(lambda: fh.read(_CHUNK), b""), max_bytes=max_bytes)

    def _make_dirs(self, directory: Path) -> None:
        # Create ``ab/cd`` and fsync each parent so the new entries survive a power cut.
        missing: list[Path] = []
        current = directory
        while not current.exists() and current != self.root:
            missing.append(current)
            current = current.parent
        for new in reversed(missing):
            new.mkdir(exist_ok=True)
            fsync_dir(new.parent)

    # -- reading ---------------------------------------------------------------------------

    def path(self, key: str) -> Path:
        """Where the blob ``key`` lives (it may not exist).

        Raises:
            InputError: ``key`` is not a lowercase sha256 hex digest.
        """
        if not _KEY.match(key):
            raise InputError(f"invalid blob key {key!r}: expected 64 lowercase hex digits")
        return self.root / key[:2] / key[2:4] / key

    def exists(self, key: str) -> bool:
        """Whether the blob ``key`` is stored."""
        return self.path(key).is_file()

    def open_verified(self, key: str, expected_sha256: str | None = None) -> Path:
        """The blob's path, after checking that its bytes hash to ``expected_sha256``.

        Args:
            key: the blob key.
            expected_sha256: the hash recorded with the row; defaults to ``key``.

        Raises:
            BlobCorrupt: the blob is missing or its bytes do not match.
        """
        target = self.path(key)
        expected = expected_sha256 or key
        try:
            actual = sha256_file(target)
        except FileNotFoundError as err:
            raise BlobCorrupt(f"blob {key} is missing") from err
        if actual != expected:
            raise BlobCorrupt(f"blob {key} is corrupt: sha256 {actual}, expected {expected}")
        return target

    def read_bytes(self, key: str, expected_sha256: str | None = None) -> bytes:
        """The blob's bytes, checked against ``expected_sha256`` (default: ``key``).

        Raises:
            BlobCorrupt: the blob is missing or its bytes do not match.
        """
        expected = expected_sha256 or key
        try:
            data = self.path(key).read_bytes()
        except FileNotFoundError as err:
            raise BlobCorrupt(f"blob {key} is missing") from err
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise BlobCorrupt(f"blob {key} is corrupt: sha256 {actual}, expected {expected}")
        return data

    def read_chunks(
        self, key: str, expected_sha256: str | None = None, chunk: int = _CHUNK
    ) -> Iterator[bytes]:
        """The blob's bytes in pieces of ``chunk`` bytes, never more than one in memory:
        the file is checked against ``expected_sha256`` (default: ``key``) and opened
        *before* this returns, so a bad blob raises here, not half-way through a response.

        Raises:
            BlobCorrupt: the blob is missing or its bytes do not match.
        """
        handle = open(self.open_verified(key, expected_sha256), "rb")  # noqa: SIM115

        def pieces() -> Iterator[bytes]:
            with handle:
                while data := handle.read(chunk):
                    yield data

        return pieces()

    def keys(self) -> Iterator[str]:
        """Every stored blob key (unordered)."""
        for first in self.root.iterdir():
            if first.name == _TMP or not first.is_dir() or len(first.name) != 2:
                continue
            for second in first.iterdir():
                if not second.is_dir():
                    continue
                for blob in second.iterdir():
                    if _KEY.match(blob.name) and blob.is_file():
                        yield blob.name

    # -- cleaning --------------------------------------------------------------------------

    def delete(self, key: str) -> bool:
        """Remove the blob ``key`` now (erasure); ``False`` if it was not there.

        The caller makes sure no row points to it (see :mod:`medloop.storage.repo_blobs`).
        """
        target = self.path(key)
        try:
            target.unlink()
        except FileNotFoundError:
            return False
        fsync_dir(target.parent)
        return True

    def sweep_temp(self, older_than_s: float = 0.0) -> int:
        """Delete leftover temporary files (from a crash); call at start, before uploads.

        Args:
            older_than_s: only delete files not modified for this long.

        Returns:
            The number of files deleted.
        """
        cutoff = time.time() - older_than_s
        removed = 0
        for entry in self._tmp.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if entry.is_file() and entry.stat().st_mtime <= cutoff:
                    entry.unlink()
                    removed += 1
        if removed:
            logger.info("removed %d temporary upload file(s) from %s", removed, self._tmp)
        return removed

    def sweep_orphans(self, referenced: set[str], grace_s: float = 3600.0) -> int:
        """Delete blobs that no database row references.

        Args:
            referenced: every blob key the database references.
            grace_s: keep unreferenced blobs younger than this: their row may be about to
                be committed by an upload in flight.

        Returns:
            The number of blobs deleted.
        """
        cutoff = time.time() - grace_s
        removed = 0
        for key in list(self.keys()):
            if key in referenced:
                continue
            target = self.path(key)
            with contextlib.suppress(FileNotFoundError):
                if target.stat().st_mtime <= cutoff:
                    target.unlink()
                    removed += 1
        if removed:
            logger.info("removed %d unreferenced blob(s) from %s", removed, self.root)
        return removed
