"""The CLI's corrections: an append-only index beside a content-addressed blob store.

Layout under ``REGISTRY/corrections/``: ``index.jsonl`` (one record per correction,
append-only) and ``blobs/`` (a :class:`~medloop.storage.blobs.BlobStore`: image and
mask bytes, named by sha256, written once). A correction's id is derived from its
image and mask hashes, so submitting the same pair twice stores it once. Registries
written before the blob store was shared kept flat ``blobs/<sha256>.<ext>`` files;
they are moved into the store when the folder is opened.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from medloop.domain.learning import is_held_out
from medloop.storage.blobs import BlobStore

__all__ = ["CorrectionFolder", "FolderCorrection"]

_LEGACY_BLOB = re.compile(r"^([0-9a-f]{64})(\.[A-Za-z0-9]+)?$")


@dataclass(frozen=True)
class FolderCorrection:
    """One stored correction; its pixels are the blobs ``image_sha256`` and ``mask_sha256``."""

    id: str
    seq: int
    key: str
    image_sha256: str
    mask_sha256: str
    held_out: bool
    author: str
    corrects_version: str | None
    created_at: str


class CorrectionFolder:
    """Append-only store of corrections for one CLI project (see the module doc)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.blobs = BlobStore(self.root / "blobs")
        self.index = self.root / "index.jsonl"
        self._adopt_legacy_blobs()

    def _adopt_legacy_blobs(self) -> None:
        for path in self.blobs.root.iterdir():
            match = _LEGACY_BLOB.match(path.name)
            if match and path.is_file():
                ref = self.blobs.put_file(path)
                if ref.sha256 == match.group(1):
                    path.unlink()

    def add(
        self,
        image: bytes,
        mask: bytes,
        *,
        key: str,
        held_out_share: float,
        author: str = "unknown",
        corrects_version: str | None = None,
    ) -> FolderCorrection:
        """Store one correction; returns the existing record for a repeat."""
        img = self.blobs.put_bytes(image)
        msk = self.blobs.put_bytes(mask)
        cid = hashlib.sha256(f"{img.sha256}:{msk.sha256}".encode()).hexdigest()[:16]
        with open(self.root / ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            existing = self.records()
            for rec in existing:
                if rec.id == cid:
                    return rec
            seq = len(existing)
            rec = FolderCorrection(
                id=cid,
                seq=seq,
                key=key,
                image_sha256=img.sha256,
                mask_sha256=msk.sha256,
                held_out=is_held_out(seq, held_out_share),
                author=author,
                corrects_version=corrects_version,
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            )
            with open(self.index, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(asdict(rec)) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        return rec

    def records(self) -> list[FolderCorrection]:
        """All corrections, oldest first."""
        if not self.index.exists():
            return []
        fields = FolderCorrection.__dataclass_fields__
        with open(self.index, encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
        return [FolderCorrection(**{k: v for k, v in r.items() if k in fields}) for r in rows]

    def latest_per_image(self) -> list[FolderCorrection]:
        """The newest correction of each image (an image corrected twice counts once)."""
        latest: dict[str, FolderCorrection] = {}
        for rec in self.records():
            latest[rec.image_sha256] = rec
        return sorted(latest.values(), key=lambda r: r.seq)

    def read(self, sha256: str) -> bytes:
        """The bytes of a stored image or mask, checked against ``sha256``."""
        return self.blobs.read_bytes(sha256, sha256)
