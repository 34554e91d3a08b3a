"""A project's DICOM administration: its DICOMweb server, de-identification on ingest,
the sync ledger and the pseudonym map (all for admins)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from medloop.domain.dicom import DicomSettings, DicomwebSettings, require_allowed_host
from medloop.domain.jobs import DicomwebSyncJob, JobRecord
from medloop.domain.records import DicomInstanceRecord, ProjectRecord, PseudonymRecord
from medloop.domain.secrets import SecretBox
from medloop.errors import InputError
from medloop.services.jobs import JobService
from medloop.storage import repo_dicom
from medloop.storage.database import Database

__all__ = ["DicomAdmin", "SyncLedger"]


@dataclass(frozen=True)
class SyncLedger:
    """The sync's memory of a project: counts ``{kind: {state: n}}`` and the latest rows."""

    counts: dict[str, dict[str, int]]
    items: list[DicomInstanceRecord]


class DicomAdmin:
    """DICOM settings and the DICOMweb sync of projects.

    Args:
        db: the database.
        jobs: where syncs are queued.
        box: seals and opens the stored secrets.
        allowed_hosts: the DICOMweb hosts the server operator allows (see
            :func:`~medloop.domain.dicom.dicomweb_host_allowed`).
    """

    def __init__(
        self, db: Database, jobs: JobService, box: SecretBox, allowed_hosts: Sequence[str]
    ) -> None:
        self.db, self.jobs, self.box = db, jobs, box
        self.allowed_hosts = tuple(allowed_hosts)

    def settings(self, project: ProjectRecord) -> dict[str, Any]:
        """The project's DICOM settings without secrets."""
        return DicomSettings.load(project.dicom, self.box).public()

    def configure(
        self,
        project: ProjectRecord,
        dicomweb: DicomwebSettings | None,
        deidentify_on_ingest: bool,
        user_id: str | None,
    ) -> dict[str, Any]:
        """Connect the project to a DICOMweb server (or disconnect it with ``None``) and
        switch de-identification on ingest; a password or token left out keeps the stored
        one (only while the server's scheme, host and port stay the same). Returns the
        settings without secrets; an enabled server gets a sync queued.

        Raises:
            ConfigError: a DICOMweb host the server operator does not allow.
        """
        if dicomweb is not None:
            require_allowed_host(dicomweb.url, self.allowed_hosts)
        old = DicomSettings.load(project.dicom, self.box)
        new = DicomSettings(
            dicomweb=dicomweb,
            deidentify=old.deidentify.model_copy(update={"enabled": deidentify_on_ingest}),
        ).merged_secrets(old)
        if new.deidentify.enabled:
            new = new.with_key()
        with self.db.write() as s:
            repo_dicom.set_dicom_settings(s, project.id, new.stored(self.box))
        if new.dicomweb is not None and new.dicomweb.enabled:
            self.jobs.submit(project, DicomwebSyncJob(), user_id)
        return new.public()

    def sync_now(self, project: ProjectRecord, user_id: str | None) -> JobRecord:
        """Queue a DICOMweb sync (one queued sync per project at most).

        Raises:
            InputError: the project has no DICOMweb server.
        """
        if DicomSettings.load(project.dicom, None).dicomweb is None:
            raise InputError("the project has no DICOMweb server: PUT .../dicom first")
        return self.jobs.submit(project, DicomwebSyncJob(), user_id)

    def ledger(self, project_id: str, state: str | None, limit: int = 100) -> SyncLedger:
        """Counts by kind and state, and the latest instances (``limit`` 1..1000)."""
        with self.db.read() as s:
            counts = repo_dicom.count_dicom_instances(s, project_id)
            rows = repo_dicom.list_dicom_instances(
                s, project_id, state, limit=min(max(limit, 1), 1000)
            )
        return SyncLedger(counts, rows)

    def pseudonyms(
        self, project_id: str, limit: int = 1000, offset: int = 0
    ) -> list[PseudonymRecord]:
        """The de-identification pseudonym map, oldest first (``limit`` 1..10000)."""
        with self.db.read() as s:
            return repo_dicom.list_pseudonyms(
                s, project_id, limit=min(max(limit, 1), 10_000), offset=max(offset, 0)
            )
