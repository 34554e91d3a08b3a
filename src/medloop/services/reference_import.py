"""Reference data in bulk: a zip of image/mask pairs, imported by a job with progress.

:meth:`ReferenceImport.submit` stores the upload as a blob, checks that it is a
dataset (``images/`` + ``masks/``, or a ``manifest.csv`` with splits and groups, as
``medloop import`` reads), and queues a ``reference_import`` job; a zip that is no
dataset answers 400 and nothing is queued. The job (:meth:`ReferenceImport.run`) adds
each pair whole or not at all (:meth:`References.add`), lists every pair it refused
with the reason, and removes the archive when it ends. Importing the same archive
again adds nothing twice.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections import Counter
from collections.abc import Iterable
from typing import Any

from medloop.domain.jobs import JobRecord, ReferenceImportJob, ReferenceImportOptions
from medloop.domain.records import ProjectRecord
from medloop.errors import BlobCorrupt, ConfigError, ConflictError, InputError
from medloop.io.archive import ArchivePair, DatasetArchive, MemberError
from medloop.jobs.worker import JobContext
from medloop.services.blob_removal import BlobRemoval
from medloop.services.jobs import JobService
from medloop.services.references import References, clean_group
from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobStore
from medloop.storage.database import Database
from medloop.storage.models import utcnow

__all__ = ["ReferenceImport", "auto_splits"]

MAX_LISTED = 500
"""Refused pairs listed in the job's result (the count covers all)."""
MAX_LOGGED = 50


def auto_splits(keys: Iterable[str]) -> dict[str, str]:
    """``{key: split}`` for pairs given no split: every 10th by key hash (at least one of
    two or more) is ``val``, the rest ``train``; the same keys always get the same splits."""
    ranked = sorted(keys, key=lambda k: hashlib.sha256(k.encode()).hexdigest())
    n_val = max(1, len(ranked) // 10) if len(ranked) >= 2 else 0
    return {k: ("val" if i < n_val else "train") for i, k in enumerate(ranked)}


class ReferenceImport:
    """Queue and run reference imports.

    Args:
        db: the database.
        blobs: where the archive waits for its job.
        references: adds each pair.
        jobs: the job queue.
        removal: removes the archive when the job ends.
        max_archive_bytes: largest archive accepted.
        max_member_bytes: largest image or mask inside it.
    """

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        references: References,
        jobs: JobService,
        removal: BlobRemoval,
        max_archive_bytes: int,
        max_member_bytes: int,
    ) -> None:
        self.db, self.blobs, self.references, self.jobs = db, blobs, references, jobs
        self.removal = removal
        self.max_archive_bytes, self.max_member_bytes = max_archive_bytes, max_member_bytes

    def submit(
        self,
        project: ProjectRecord,
        chunks: Iterable[bytes],
        filename: str,
        split: str = "auto",
        group: str | None = None,
        user_id: str | None = None,
    ) -> tuple[JobRecord, int]:
        """Store the archive and queue its import; returns the job and how many pairs it holds.

        Raises:
            DatasetError: not a zip, or no dataset in it (nothing is stored or queued).
            UploadTooLarge: over the archive limit. ConfigError: a bad split or group.
        """
        try:
            options = ReferenceImportOptions(
                archive="0" * 64,
                filename=repo.sanitize_filename(filename or "upload.zip")[:255],
                split=split,  # type: ignore[arg-type]
                group=clean_group(group),
            )
        except ValueError as err:
            raise ConfigError(f"reference import: {err}") from err
        with self.blobs.staged(chunks, max_bytes=self.max_archive_bytes) as staged:
            with DatasetArchive.open(staged.path, self.max_member_bytes) as archive:
                n_pairs = len(archive.pairs)
            ref = staged.commit()
        spec = ReferenceImportJob(options=options.model_copy(update={"archive": ref.key}))
        return self.jobs.submit(project, spec, user_id, coalesce=False), n_pairs

    def run(self, job: JobRecord, ctx: JobContext) -> dict[str, Any]:
        """The job: import every valid pair of the archive, list the others."""
        spec = job.spec
        if not isinstance(spec, ReferenceImportJob):
            raise ConfigError(f"job {job.id} is a {job.kind} job, not a reference import")
        opts = spec.options
        with self.db.read() as s:
            project = repo.get_project(s, job.project_id)
        try:
            path = self.blobs.open_verified(opts.archive)
            with DatasetArchive.open(path, self.max_member_bytes) as archive:
                return _Run(self.references, project, opts, job, ctx).all(archive)
        finally:
            self.removal.remove_unreferenced({opts.archive}, except_job=job.id)


class _Run:
    """One import: the counts and the refused pairs as it goes."""

    def __init__(
        self,
        references: References,
        project: ProjectRecord,
        opts: ReferenceImportOptions,
        job: JobRecord,
        ctx: JobContext,
    ) -> None:
        self.references, self.project, self.opts, self.job, self.ctx = (
            references,
            project,
            opts,
            job,
            ctx,
        )
        self.started = utcnow()
        self.counts: Counter[str] = Counter()
        self.splits: Counter[str] = Counter()
        self.errors: list[dict[str, Any]] = []

    def all(self, archive: DatasetArchive) -> dict[str, Any]:
        pairs = archive.pairs
        auto = auto_splits(p.key for p in pairs if p.split is None and p.problem is None)
        self.ctx.progress(0.0, f"importing {len(pairs)} pairs from {self.opts.filename}")
        for i, pair in enumerate(pairs):
            self.one(archive, pair, auto)
            self.ctx.progress((i + 1) / len(pairs))
        self.ctx.log(
            f"added {self.counts['added']}, already present {self.counts['present']}, "
            f"refused {self.counts['failed']}"
        )
        return {
            "archive": self.opts.filename,
            "pairs": len(pairs),
            "added": self.counts["added"],
            "present": self.counts["present"],
            "failed": self.counts["failed"],
            "splits": dict(self.splits),
            "errors": self.errors,
        }

    def one(self, archive: DatasetArchive, pair: ArchivePair, auto: dict[str, str]) -> None:
        if pair.problem is not None or pair.image is None or pair.mask is None:
            self.refuse(pair, pair.problem or "incomplete pair")
            return
        split = pair.split or (auto[pair.key] if self.opts.split == "auto" else self.opts.split)
        try:
            image, mask = archive.read(pair.image), archive.read(pair.mask)
            record = self.references.add(
                self.project,
                (image,),
                posixpath.basename(pair.image),
                "",
                (mask,),
                posixpath.basename(pair.mask),
                split,
                self.job.created_by,
                pair.group or self.opts.group,
            )
        except (InputError, ConflictError, MemberError, BlobCorrupt) as err:
            self.refuse(pair, str(err))
            return
        self.counts["present" if record.created_at < self.started else "added"] += 1
        self.splits[record.split] += 1

    def refuse(self, pair: ArchivePair, reason: str) -> None:
        self.counts["failed"] += 1
        if len(self.errors) < MAX_LISTED:
            self.errors.append(
                {"key": pair.key, "image": pair.image, "mask": pair.mask, "reason": reason}
            )
        if self.counts["failed"] <= MAX_LOGGED:
            self.ctx.log(f"refused {pair.key}: {reason}")
