"""Erasure of a patient's, a study's or one image's data from a project, as an audited job.

An admin names the scope and the value (a Patient ID, a Study Instance UID, or an
image id) and why. :meth:`Erasures.preview` says what would go; :meth:`Erasures.request`
records the erasure and queues an ``erasure`` job (it cannot be cancelled). The job
deletes the images (with a DICOM volume's source headers and the viewer's copies), their
reference pairs, analyses and corrections, then the blobs no other row uses, and the
pseudonym map's entries no remaining image needs. Nothing else is touched: model
versions that trained on the data stay, and their lineage (ids and sha256 only) is shown
marked "erased". The identifier is kept only until the job ends; the record keeps its
sha256, who asked, why and what went.

With de-identification on ingest, images hold pseudonyms: a Patient ID or Study UID
given as it was before de-identification is looked up in the pseudonym map.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from medloop.domain.jobs import ErasureJob, ErasureOptions, JobRecord
from medloop.domain.records import ErasureRecord, ImageRecord, ProjectRecord
from medloop.errors import BlobCorrupt, ConfigError, InputError, NotFoundError
from medloop.io import dicom_patient_id
from medloop.jobs.worker import JobCancelled, JobContext
from medloop.services.audit import Actor
from medloop.services.blob_removal import BlobRemoval
from medloop.services.jobs import JobService
from medloop.storage import repo_versions
from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobStore
from medloop.storage.database import Database

__all__ = ["ErasurePreview", "Erasures", "value_digest"]

SCOPES = ("patient", "study", "image")
_META = {"patient": "PatientID", "study": "StudyInstanceUID"}
_PSEUDONYM_KIND = {"patient": "patient_id", "study": "uid"}
# Metadata keys whose values the pseudonym map may hold, and the map's kinds for each.
_FORGET = {
    "PatientID": ("patient_id", "patient_name"),
    "StudyInstanceUID": ("uid",),
    "SeriesInstanceUID": ("uid",),
    "SOPInstanceUID": ("uid",),
}
SAMPLE = 20
_PLURAL = {
    "image": "images",
    "reference": "references",
    "analysis": "analyses",
    "correction": "corrections",
}


def value_digest(value: str) -> str:
    """The sha256 kept of an erased identifier."""
    return hashlib.sha256(value.strip().encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ErasurePreview:
    """What an erasure would remove: counts by kind, some of the images, and the versions
    that trained on any of it."""

    scope: str
    counts: dict[str, int]
    images: list[ImageRecord]
    versions: list[str]


class Erasures:
    """Preview, request, list and carry out erasures.

    Args:
        db: the database.
        blobs: the blob store.
        removal: removes blobs no row uses any more.
        jobs: the job queue.
    """

    def __init__(self, db: Database, blobs: BlobStore, removal: BlobRemoval, jobs: JobService):
        self.db, self.blobs, self.removal, self.jobs = db, blobs, removal, jobs

    # -- finding ----------------------------------------------------------------------------

    def _targets(self, s: Session, project_id: str, scope: str, value: str) -> list[ImageRecord]:
        if scope not in SCOPES:
            raise InputError(f"scope must be one of {', '.join(SCOPES)}; got {scope!r}")
        value = value.strip()
        if not value:
            raise InputError("give the identifier to erase")
        if scope == "image":
            return [repo.get_image(s, value, project_id)]
        values = {value, *repo.pseudonyms_of(s, project_id, _PSEUDONYM_KIND[scope], value)}
        found = repo.images_by_meta(s, project_id, _META[scope], values)
        if scope == "patient":  # DICOM stored before medloop kept the Patient ID
            for image in repo.dicom_images_lacking(s, project_id, "PatientID"):
                if self._patient_of(image) in values:
                    found.append(image)
        return found

    def _patient_of(self, image: ImageRecord) -> str | None:
        try:
            return dicom_patient_id(self.blobs.read_bytes(image.blob_key, image.sha256))
        except BlobCorrupt:
            return None

    def _instance_uids(self, images: list[ImageRecord]) -> set[str]:
        """The SOP Instance UIDs in the source headers of erased volumes (pseudonyms, with
        de-identification on ingest: their map entries go with them)."""
        from medloop.dicom.series_headers import unpack_headers

        out: set[str] = set()
        for image in images:
            if image.headers_blob_key is None or image.headers_sha256 is None:
                continue
            try:
                data = self.blobs.read_bytes(image.headers_blob_key, image.headers_sha256)
            except BlobCorrupt:
                continue
            out.update(str(ds.SOPInstanceUID) for ds in unpack_headers(data))
        return out

    def preview(self, project: ProjectRecord, scope: str, value: str) -> ErasurePreview:
        """What erasing ``scope`` ``value`` would remove (``NotFoundError`` if nothing)."""
        with self.db.read() as s:
            images = self._targets(s, project.id, scope, value)
            if not images:
                raise NotFoundError(f"no image of {scope} {value.strip()!r} in this project")
            ids = repo.describe_images(s, project.id, [i.id for i in images])
            used = repo_versions.trained_on(s, project.id)
        keys = set(ids["reference"]) | set(ids["correction"])
        versions = sorted({v for k in keys for v in used.get(k, ())})
        counts = {kind: len(v) for kind, v in ids.items()}
        return ErasurePreview(scope, counts, images[:SAMPLE], versions)

    # -- requesting -------------------------------------------------------------------------

    def request(
        self, project: ProjectRecord, scope: str, value: str, reason: str, actor: Actor
    ) -> tuple[ErasureRecord, JobRecord]:
        """Record the erasure and queue its job.

        Raises:
            InputError: an unknown scope, an empty value or reason.
            NotFoundError: nothing of that scope and value in the project.
        """
        reason = reason.strip()
        if not reason:
            raise InputError("say why the data is erased (the audit trail keeps it)")
        self.preview(project, scope, value)
        with self.db.write() as s:
            record = repo.create_erasure(
                s,
                project_id=project.id,
                scope=scope,
                value=value.strip(),
                value_sha256=value_digest(value),
                reason=reason[:2000],
                actor_name=actor.name,
                actor_id=actor.user_id,
            )
        spec = ErasureJob(options=ErasureOptions(erasure=record.id))
        job = self.jobs.submit(project, spec, actor.user_id, coalesce=False)
        with self.db.write() as s:
            repo.set_erasure_job(s, record.id, job.id)
            record = repo.get_erasure(s, record.id)
        return record, job

    def recent(self, project_id: str, limit: int = 100) -> list[ErasureRecord]:
        """The project's erasures, newest first."""
        with self.db.read() as s:
            return repo.list_erasures(s, project_id, limit)

    def get(self, project_id: str, erasure_id: str) -> ErasureRecord:
        """One erasure of the project."""
        with self.db.read() as s:
            return repo.get_erasure(s, erasure_id, project_id)

    # -- the job ----------------------------------------------------------------------------

    def run(self, job: JobRecord, ctx: JobContext) -> dict[str, Any]:
        """Carry out the erasure the job names (again, harmlessly, after a crash)."""
        spec = job.spec
        if not isinstance(spec, ErasureJob):
            raise ConfigError(f"job {job.id} is a {job.kind} job, not an erasure")
        erasure_id = spec.options.erasure
        try:
            return self._run(erasure_id, ctx)
        except JobCancelled:
            raise  # no longer this worker's job: whoever holds it now finishes it
        except Exception:
            with self.db.write() as s:
                repo.finish_erasure(s, erasure_id, "failed", {})
            raise

    def _run(self, erasure_id: str, ctx: JobContext) -> dict[str, Any]:
        with self.db.read() as s:
            erasure = repo.get_erasure(s, erasure_id)
            value = repo.pending_value(s, erasure_id)
        if erasure.state == "done" or value is None:
            return {"erasure": erasure_id, **erasure.counts}
        ctx.progress(0.1, f"erasing the {erasure.scope}'s data")
        with self.db.write() as s:
            images = self._targets(s, erasure.project_id, erasure.scope, value)
            instances = self._instance_uids(images)
            rows = repo.erase_images(s, erasure_id, erasure.project_id, [i.id for i in images])
            forgotten = _forget_pseudonyms(s, erasure.project_id, images)
            forgotten += repo.remove_pseudonyms(s, erasure.project_id, ("uid",), instances)
        ctx.progress(0.6, f"deleted {sum(rows.counts.values())} rows; removing blobs")
        with self.db.read() as s:  # all this erasure removed, over every attempt
            items = repo.erased_items(s, erasure.project_id, erasure_id)
        removed, shared = self.removal.remove_unreferenced(
            {h for _, _, h in items} | rows.blob_keys
        )
        counts = {
            **{plural: sum(k == kind for k, _, _ in items) for kind, plural in _PLURAL.items()},
            "blobs_removed": removed,
            "blobs_still_used": shared,
            "pseudonyms": forgotten,
        }
        with self.db.write() as s:
            repo.finish_erasure(s, erasure_id, "done", counts)
        ctx.progress(1.0, "erased: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return {"erasure": erasure_id, **counts}


def _forget_pseudonyms(s: Session, project_id: str, images: list[ImageRecord]) -> int:
    """Drop the pseudonym map's entries for identifiers no remaining image carries."""
    forgotten = 0
    for key, kinds in _FORGET.items():
        values = {str(i.metadata[key]) for i in images if i.metadata.get(key)}
        still = {str(i.metadata.get(key)) for i in repo.images_by_meta(s, project_id, key, values)}
        forgotten += repo.remove_pseudonyms(s, project_id, kinds, values - still)
    return forgotten
