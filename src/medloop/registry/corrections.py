"""The correction store: every correction ever submitted, immutable and content-addressed.

Layout under ``REGISTRY/corrections/``: ``blobs/<sha256><ext>`` (image and mask bytes,
written once) and ``index.jsonl`` (one record per correction, append-only). A
correction's id is derived from its image and mask hashes, so submitting the same
pair twice stores it once.

A fixed share of corrections is held out for the promotion gate, decided when a
correction arrives (every ``round(1/share)``-th one) and never changed after, so a
held-out correction is never trained on.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from medloop.errors import ConfigError

__all__ = ["CorrectionRecord", "CorrectionSource", "CorrectionStore", "is_held_out"]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_held_out(seq: int, share: float) -> bool:
    """Whether the ``seq``-th correction (0-based) is held out for evaluation."""
    if not 0.0 <= share < 1.0:
        raise ConfigError(f"held-out share must be in [0, 1), got {share}")
    if share == 0.0:
        return False
    every = max(2, round(1.0 / share))
    return (seq + 1) % every == 0


@dataclass(frozen=True)
class CorrectionRecord:
    """One stored correction. Paths are relative to the store's root."""

    id: str
    seq: int
    key: str
    image: str
    mask: str
    image_sha256: str
    mask_sha256: str
    held_out: bool
    author: str
    corrects_version: str | None
    created_at: str


class CorrectionSource(Protocol):
    """Where a fine-tune finds its corrections: this file store, or the server's database."""

    def latest_per_image(self) -> list[CorrectionRecord]: ...

    def path(self, rel: str) -> Path: ...


class CorrectionStore:
    """Append-only store of corrections for one project."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.index = self.root / "index.jsonl"

    def _store_blob(self, src: Path) -> tuple[str, str]:
        sha = _sha256(src)
        name = f"{sha}{src.suffix.lower()}"
        dest = self.blobs / name
        if not dest.exists():
            tmp = self.blobs / f".{uuid.uuid4().hex}.tmp"
            shutil.copyfile(src, tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        return sha, f"blobs/{name}"

    def add(
        self,
        image: Path,
        mask: Path,
        *,
        key: str,
        held_out_share: float,
        author: str = "unknown",
        corrects_version: str | None = None,
    ) -> CorrectionRecord:
        """Store one correction (files copied); returns the existing record for a repeat."""
        img_sha, img_rel = self._store_blob(image)
        msk_sha, msk_rel = self._store_blob(mask)
        cid = hashlib.sha256(f"{img_sha}:{msk_sha}".encode()).hexdigest()[:16]
        with open(self.root / ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            existing = self.records()
            for rec in existing:
                if rec.id == cid:
                    return rec
            seq = len(existing)
            rec = CorrectionRecord(
                id=cid,
                seq=seq,
                key=key,
                image=img_rel,
                mask=msk_rel,
                image_sha256=img_sha,
                mask_sha256=msk_sha,
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

    def records(self) -> list[CorrectionRecord]:
        """All corrections, oldest first."""
        if not self.index.exists():
            return []
        with open(self.index, encoding="utf-8") as fh:
            return [CorrectionRecord(**json.loads(line)) for line in fh if line.strip()]

    def latest_per_image(self) -> list[CorrectionRecord]:
        """The newest correction of each image (an image corrected twice counts once)."""
        latest: dict[str, CorrectionRecord] = {}
        for rec in self.records():
            latest[rec.image_sha256] = rec
        return sorted(latest.values(), key=lambda r: r.seq)

    def path(self, rel: str) -> Path:
        return self.root / rel
