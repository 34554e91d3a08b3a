"""The blob store: content addressing, dedup, verification, size limit, sweeping."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from medloop.errors import InputError
from medloop.storage import BlobCorrupt, BlobStore, UploadTooLarge


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def _tmp_files(store: BlobStore) -> list[Path]:
    return list((store.root / "tmp").iterdir())


def test_put_is_content_addressed_and_deduplicated(store: BlobStore) -> None:
    data = b"hello medloop" * 1000
    sha = hashlib.sha256(data).hexdigest()
    ref = store.put_stream(iter([data[:7], data[7:5000], data[5000:]]), max_bytes=len(data))
    assert (ref.key, ref.sha256, ref.size) == (sha, sha, len(data))
    assert store.path(sha) == store.root / sha[:2] / sha[2:4] / sha
    assert store.exists(sha)
    assert store.read_bytes(sha) == data
    assert store.read_bytes(sha, sha) == data
    assert store.open_verified(sha).read_bytes() == data
    again = store.put_bytes(data)
    assert again == ref
    assert list(store.keys()) == [sha]
    assert _tmp_files(store) == []


def test_put_file(store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "f.bin"
    source.write_bytes(os.urandom(3 << 20))
    ref = store.put_file(source)
    assert store.read_bytes(ref.key) == source.read_bytes()


def test_corruption_is_detected(store: BlobStore) -> None:
    ref = store.put_bytes(b"original bytes")
    store.path(ref.key).write_bytes(b"tampered bytes")
    with pytest.raises(BlobCorrupt, match="corrupt"):
        store.read_bytes(ref.key)
    with pytest.raises(BlobCorrupt, match="corrupt"):
        store.open_verified(ref.key, ref.sha256)
    # storing the right bytes again repairs a blob of the wrong size
    store.path(ref.key).write_bytes(b"short")
    store.put_bytes(b"original bytes")
    assert store.read_bytes(ref.key) == b"original bytes"


def test_missing_blob_and_bad_key(store: BlobStore) -> None:
    missing = hashlib.sha256(b"never stored").hexdigest()
    assert not store.exists(missing)
    with pytest.raises(BlobCorrupt, match="missing"):
        store.read_bytes(missing)
    with pytest.raises(BlobCorrupt, match="missing"):
        store.open_verified(missing)
    for bad in ("../../etc/passwd", "A" * 64, "abc"):
        with pytest.raises(InputError, match="invalid blob key"):
            store.path(bad)


def test_upload_too_large_leaves_nothing(store: BlobStore) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"x" * 600
        yield b"x" * 600
        raise AssertionError("read past the limit")

    with pytest.raises(UploadTooLarge, match="1000 bytes"):
        store.put_stream(chunks(), max_bytes=1000)
    assert isinstance(UploadTooLarge("x"), InputError)
    assert _tmp_files(store) == []
    assert list(store.keys()) == []


def test_failing_stream_leaves_no_temp_file(store: BlobStore) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"partial"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        store.put_stream(chunks())
    assert _tmp_files(store) == []


def test_sweep_temp(store: BlobStore) -> None:
    (store.root / "tmp" / "upload-crashed.tmp").write_bytes(b"half")
    fresh = store.root / "tmp" / "upload-in-flight.tmp"
    fresh.write_bytes(b"x")
    old = time.time() - 7200
    os.utime(store.root / "tmp" / "upload-crashed.tmp", (old, old))
    assert store.sweep_temp(older_than_s=3600) == 1
    assert fresh.exists()
    assert store.sweep_temp() == 1
    assert _tmp_files(store) == []


def test_sweep_orphans_keeps_referenced_and_recent_blobs(store: BlobStore) -> None:
    kept = store.put_bytes(b"referenced")
    orphan = store.put_bytes(b"orphan")
    recent = store.put_bytes(b"recent orphan, maybe an upload in flight")
    old = time.time() - 7200
    for ref in (kept, orphan):
        os.utime(store.path(ref.key), (old, old))
    assert store.sweep_orphans({kept.key}) == 1
    assert store.exists(kept.key) and store.exists(recent.key)
    assert not store.exists(orphan.key)
    assert store.sweep_orphans({kept.key}, grace_s=0) == 1
    assert list(store.keys()) == [kept.key]


def test_dedup_refreshes_an_old_blob_for_the_grace_period(store: BlobStore) -> None:
    ref = store.put_bytes(b"uploaded long ago, orphaned, uploaded again")
    old = time.time() - 7200
    os.utime(store.path(ref.key), (old, old))
    store.put_bytes(b"uploaded long ago, orphaned, uploaded again")
    assert store.sweep_orphans(set()) == 0


def test_staged_blob_is_private_until_committed(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    with store.staged([b"abc", b"def"]) as staged:
        assert staged.path.read_bytes() == b"abcdef"
        assert not store.exists(staged.sha256)
    assert not store.exists(staged.sha256)  # never committed: gone
    assert not any((tmp_path / "blobs" / "tmp").iterdir())
    with store.staged([b"abcdef"]) as staged:
        ref = staged.commit()
        assert staged.commit() == ref
    assert store.read_bytes(ref.key) == b"abcdef"


def test_rejected_staged_uploads_never_touch_a_shared_blob(tmp_path: Path) -> None:
    """Two requests with the same bytes: one rejects its copy, the other keeps the stored blob."""
    store = BlobStore(tmp_path / "blobs")
    kept = store.put_bytes(b"same bytes")
    with store.staged([b"same bytes"]):
        pass  # rejected, e.g. not an image
    assert store.read_bytes(kept.key) == b"same bytes"
