"""DICOMweb sync: new PACS instances are fetched, analysed, and their SEG stored back.

One run (:func:`sync_project`, the ``dicomweb_sync`` job) does three things:

1. **Discover** (QIDO-RS): every instance the PACS lists that the project's ledger
   (``dicom_instances``) does not know yet is recorded, by SOP Instance UID, as an
   image to analyse (``source``), a SEG to read as a correction (``seg_in``), or
   something else (``other``, skipped). A SEG medloop stored itself is recorded
   (``seg_out``) before it is sent, so it is never read back as a correction.
   Nothing is fetched twice: an instance is fetched only while its row has work left.
2. **Analyse** due ``source`` rows (WADO-RS), up to ``batch_size``: ingest (with
   de-identification if the project asks), analyse every frame, mark ``analysed``,
   build the SEG and store it (STOW-RS), mark ``done``.
3. **Correct** from due ``seg_in`` rows: a SEG that references analysed instances
   becomes corrections (:meth:`~medloop.services.corrections.Corrections.correct_from_seg`).
   A 3D project syncs whole series instead (:mod:`medloop.services.dicom_sync_series`).

A PACS that cannot be reached (:class:`PacsUnavailable`) ends the run with nothing
lost: analyses are in the database before any upload, and a SEG is rebuilt
deterministically (same UIDs) at the next try. Other failures of an instance are
retried with exponential backoff, given up after ``max_attempts``; bad data at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from medloop.dicom.dicomweb import (
    DicomwebPacs,
    InstanceRef,
    Pacs,
    PacsError,
    PacsUnavailable,
    classify,
    iter_instances,
)
from medloop.dicom.seg import encode_dataset
from medloop.domain.dicom import DicomSettings, DicomwebSettings, require_allowed_host
from medloop.domain.records import DicomInstanceRecord, ProjectRecord
from medloop.domain.secrets import SecretBox
from medloop.errors import ConfigError, InputError, NotFoundError
from medloop.services.analyses import Analyses
from medloop.services.corrections import Corrections
from medloop.services.dicom_results import SegResults
from medloop.services.dicom_sync_series import analyse_series, discover_series, is_series
from medloop.storage import repo_dicom
from medloop.storage import repositories as repo
from medloop.storage.database import Database

__all__ = ["ACTOR", "DicomSync", "SyncReport", "SyncRun", "backoff"]

log = logging.getLogger(__name__)

ACTOR = "dicomweb-sync"
"""The actor name of the sync's audit events."""


def backoff(attempts: int, base_s: float = 30.0, max_s: float = 3600.0) -> timedelta:
    """How long to wait before trying an instance again after ``attempts`` failures."""
    return timedelta(seconds=min(max_s, base_s * 2 ** max(0, min(attempts - 1, 16))))


@dataclass
class SyncReport:
    """What one sync run did (the job's result)."""

    discovered: int = 0
    analysed: int = 0
    segs_stored: int = 0
    corrections: int = 0
    failed: int = 0
    skipped: int = 0
    retrying: int = 0
    pacs_unavailable: bool = False
    no_model: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SyncRun:
    """One sync run of one project (see the module doc); the steps share its bookkeeping."""

    def __init__(
        self,
        sync: DicomSync,
        project: ProjectRecord,
        settings: DicomSettings,
        web: DicomwebSettings,
        pacs: Pacs,
        now: datetime,
        log_line: Callable[[str], None],
    ) -> None:
        self.db, self.analyses, self.corrections_ = sync.db, sync.analyses, sync.corrections
        self.results = sync.results
        self.project, self.settings, self.web = project, settings, web
        self.pacs, self.now, self.log = pacs, now, log_line
        self.report = SyncReport()

    # -- bookkeeping --------------------------------------------------------------------------
    def update(self, row: DicomInstanceRecord, **values: Any) -> DicomInstanceRecord:
        with self.db.write() as s:
            return repo_dicom.update_dicom_instance(s, row.id, **values)

    def audit(
        self, action: str, resource_type: str, resource_id: str | None, detail: dict[str, Any]
    ) -> None:
        with self.db.write() as s:
            repo.record_event(
                s,
                action=action,
                resource_type=resource_type,
                actor_name=ACTOR,
                resource_id=resource_id,
                project_id=self.project.id,
                detail=detail,
            )

    def _failed(self, row: DicomInstanceRecord, err: Exception, *, final: bool = False) -> None:
        attempts = row.attempts + 1
        message = str(err)[:1000] or type(err).__name__
        if final or attempts >= self.web.max_attempts:
            self.update(row, state="failed", attempts=attempts, last_error=message)
            self.report.failed += 1
            self.log(f"{row.sop_instance_uid}: given up: {message}")
        else:
            self.update(
                row,
                attempts=attempts,
                last_error=message,
                next_attempt_at=self.now + backoff(attempts),
            )
            self.report.retrying += 1
            self.log(f"{row.sop_instance_uid}: attempt {attempts} failed, will retry: {message}")

    # -- 1. discover ----------------------------------------------------------------------
    def discover(self) -> None:
        if self.project.settings.spatial_dims == 3:
            discover_series(self)
            return
        page: list[InstanceRef] = []
        for ref in iter_instances(self.pacs, self.web.study_date_from):
            if ref.sop:
                page.append(ref)
            if len(page) >= 500:
                self.record_instances(page)
                page = []
        if page:
            self.record_instances(page)

    def record_instances(self, refs: list[InstanceRef]) -> None:
        """Record instances the ledger does not know yet (kind and state by :func:`classify`)."""
        with self.db.write() as s:
            known = repo_dicom.known_sop_uids(s, self.project.id, (r.sop for r in refs))
            for ref in refs:
                if ref.sop in known:
                    continue
                kind, state = classify(ref, self.web)
                repo_dicom.add_dicom_instance(
                    s,
                    project_id=self.project.id,
                    sop_instance_uid=ref.sop,
                    study_instance_uid=ref.study,
                    series_instance_uid=ref.series,
                    sop_class_uid=ref.sop_class,
                    kind=kind,
                    state=state,
                    detail={"modality": ref.modality},
                )
                known.add(ref.sop)
                self.report.discovered += 1
                self.report.skipped += state == "skipped"

    # -- 2. analyse and store ---------------------------------------------------------------
    def _due(self, kind: str) -> list[DicomInstanceRecord]:
        with self.db.read() as s:
            return repo_dicom.due_dicom_instances(
                s, self.project.id, kind, self.now, self.web.batch_size
            )

    @staticmethod
    def _ref(row: DicomInstanceRecord) -> InstanceRef:
        return InstanceRef(
            row.study_instance_uid, row.series_instance_uid, row.sop_instance_uid, row.sop_class_uid
        )

    def sources(self) -> None:
        if self.analyses.models.production(self.project.id) is None:
            self.report.no_model = True
            return
        for row in self._due("source"):
            try:
                if row.state == "pending":
                    row = analyse_series(self, row) if is_series(row) else self._analyse(row)
                if row.state == "analysed":
                    self._store(row)
            except PacsUnavailable:
                raise
            except InputError as err:
                self._failed(row, err, final=True)
            except Exception as err:
                log.warning("dicomweb sync: %s failed", row.sop_instance_uid, exc_info=True)
                self._failed(row, err)

    def _analyse(self, row: DicomInstanceRecord) -> DicomInstanceRecord:
        ds = self.pacs.retrieve(self._ref(row))
        image_row, _ = self.analyses.images.ingest(
            self.project.id,
            [encode_dataset(ds)],
            f"{row.sop_instance_uid}.dcm",
            "application/dicom",
            None,
            self.project.settings.max_frames,
        )
        analyses = self.analyses.analyze_frames(self.project, image_row, None, None)
        self.report.analysed += 1
        self.audit(
            "dicomweb.analyse",
            "image",
            image_row.id,
            {"sop": row.sop_instance_uid, "analyses": [a.id for a in analyses]},
        )
        return self.update(
            row,
            state="analysed",
            image_id=image_row.id,
            last_error=None,
            detail={**row.detail, "analyses": [a.id for a in analyses]},
        )

    def _store(self, row: DicomInstanceRecord) -> None:
        from medloop.dicom.deid import identifiers, reidentify

        if not self.web.store_seg:
            self.update(row, state="done")
            return
        with self.db.read() as s:
            image_row = repo.get_image(s, str(row.image_id), self.project.id)
            analyses = [repo.get_analysis(s, a, self.project.id) for a in row.detail["analyses"]]
        if is_series(row):
            segs = [self.results.series_dataset(self.project, image_row, analyses[0])]
        else:
            segs = self.results.datasets(self.project, image_row, analyses)
        if self.settings.deidentify.enabled:
            values = [v for seg in segs for v in identifiers(seg)]
            with self.db.read() as s:
                reverse = repo_dicom.reverse_pseudonyms(s, self.project.id, values)
            segs = [reidentify(seg, reverse) for seg in segs]
        uids = [str(seg.SOPInstanceUID) for seg in segs]
        with self.db.write() as s:
            for seg in segs:
                repo_dicom.add_dicom_instance(
                    s,
                    project_id=self.project.id,
                    sop_instance_uid=str(seg.SOPInstanceUID),
                    study_instance_uid=str(seg.StudyInstanceUID),
                    series_instance_uid=str(seg.SeriesInstanceUID),
                    sop_class_uid=str(seg.SOPClassUID),
                    kind="seg_out",
                    state="done",
                    detail={"source": row.sop_instance_uid},
                )
        self.pacs.store(segs)
        self.report.segs_stored += len(segs)
        self.update(row, state="done", last_error=None, detail={**row.detail, "segs": uids})
        self.audit(
            "dicomweb.store", "image", row.image_id, {"sop": row.sop_instance_uid, "segs": uids}
        )

    # -- 3. corrections ------------------------------------------------------------------
    def corrections(self) -> None:
        from medloop.dicom.seg_read import read_seg

        for row in self._due("seg_in"):
            try:
                ds = self.pacs.retrieve(self._ref(row))
                series = [str(i.SeriesInstanceUID) for i in ds.get("ReferencedSeriesSequence", [])]
                if self.settings.deidentify.enabled:
                    from medloop.dicom.deid import Deidentifier

                    Deidentifier(self.settings.deidentify.key).apply(ds)
                labels = self.project.settings.label_set
                refs = read_seg(ds, labels, row.sop_instance_uid).references
                if self._waiting_for([*refs, *series]):  # a series: its row is by series UID
                    continue  # its source is not analysed yet: next run
                results = self.corrections_.correct_from_seg(
                    self.project, [encode_dataset(ds)], f"{row.sop_instance_uid}.dcm", None
                )
            except PacsUnavailable:
                raise
            except NotFoundError as err:
                self.update(row, state="skipped", last_error=str(err)[:1000])
                self.report.skipped += 1
                continue
            except (InputError, PacsError) as err:
                self._failed(row, err, final=isinstance(err, InputError))
                continue
            except Exception as err:
                log.warning("dicomweb sync: SEG %s failed", row.sop_instance_uid, exc_info=True)
                self._failed(row, err)
                continue
            ids = [r.correction.id for r in results]
            self.report.corrections += len(ids)
            self.update(
                row, state="done", last_error=None, detail={**row.detail, "corrections": ids}
            )
            self.audit(
                "dicomweb.correction",
                "correction",
                ids[0],
                {"seg": row.sop_instance_uid, "corrections": ids},
            )

    def _waiting_for(self, refs: Sequence[str]) -> bool:
        """Whether a referenced instance (or series) is a source not analysed yet."""
        with self.db.read() as s:
            for uid in refs:
                row = repo_dicom.find_dicom_instance(s, self.project.id, uid)
                if row is not None and row.kind == "source" and row.state == "pending":
                    return True
        return False


class DicomSync:
    """DICOMweb sync runs of the server's projects (see the module doc).

    Args:
        db: the database (the sync ledger, the audit log).
        analyses: ingests and analyses the fetched instances.
        corrections: turns SEGs from the PACS into corrections.
        results: builds the SEGs stored back.
        box: opens the stored PACS credentials and de-identification key.
        allowed_hosts: the DICOMweb hosts the server operator allows.
    """

    def __init__(
        self,
        db: Database,
        analyses: Analyses,
        corrections: Corrections,
        results: SegResults,
        box: SecretBox,
        allowed_hosts: Sequence[str],
    ) -> None:
        self.db, self.analyses, self.corrections, self.results = db, analyses, corrections, results
        self.box, self.allowed_hosts = box, tuple(allowed_hosts)

    def run(
        self,
        project_id: str,
        pacs: Pacs | None = None,
        *,
        now: datetime | None = None,
        log_line: Callable[[str], None] | None = None,
    ) -> SyncReport:
        """Run one DICOMweb sync of a project.

        Args:
            project_id: the project.
            pacs: the PACS (default: :class:`DicomwebPacs` from the project's settings).
            now: the time retries are judged against (default: now).
            log_line: where progress lines go (the job's log).

        Returns:
            What was done; ``pacs_unavailable`` when the PACS could not be reached.

        Raises:
            ConfigError: the project has no DICOMweb server, or one on a host the server
                operator does not allow.
        """
        with self.db.read() as s:
            project = repo.get_project(s, project_id)
        settings = DicomSettings.load(project.dicom, self.box)
        if settings.dicomweb is None:
            raise ConfigError(f"project {project.name!r} has no DICOMweb server")
        if pacs is None:
            require_allowed_host(settings.dicomweb.url, self.allowed_hosts)
        run = SyncRun(
            self,
            project,
            settings,
            settings.dicomweb,
            pacs if pacs is not None else DicomwebPacs(settings.dicomweb),
            now or datetime.now(UTC),
            log_line or (lambda line: log.info("%s", line)),
        )
        try:
            run.discover()
            run.sources()
            run.corrections()
        except PacsUnavailable as err:
            run.report.pacs_unavailable = True
            run.report.error = str(err)
            run.log(f"{err}; will retry")
        return run.report
