"""The composition root of the server: builds every service from :class:`Settings`.

``Runtime(settings)`` opens (and migrates) the database, the blob store and the job
queue and wires the services to exactly the collaborators each uses; ``start()``
recovers interrupted jobs, sweeps temporary and orphan blobs, and starts the
in-process job worker and the DICOMweb poller; ``stop()`` stops them. Nothing here
runs at import, and nothing but this module knows how the parts fit together.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medloop.jobs import JobWorker, SqlJobQueue, SyncScheduler
from medloop.services.analyses import Analyses
from medloop.services.audit import AuditLog
from medloop.services.blob_removal import BlobRemoval
from medloop.services.corrections import Corrections
from medloop.services.curves import JobCurves
from medloop.services.dicom_admin import DicomAdmin
from medloop.services.dicom_results import SegResults
from medloop.services.dicom_sync import DicomSync
from medloop.services.display import Display
from medloop.services.erasure import Erasures
from medloop.services.images import Images
from medloop.services.job_handlers import LearningJobs, build_handlers
from medloop.services.jobs import JobService
from medloop.services.model_pool import ModelPool
from medloop.services.model_versions import ModelVersions
from medloop.services.projects import Projects
from medloop.services.reference_import import ReferenceImport
from medloop.services.references import References
from medloop.services.system import System
from medloop.services.uploads import UploadLimits
from medloop.services.users import Users
from medloop.settings import Settings
from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobStore
from medloop.storage.database import Database

__all__ = ["Runtime", "Services"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    """The server's use cases, each built with exactly what it uses."""

    users: Users
    audit: AuditLog
    projects: Projects
    images: Images
    references: References
    imports: ReferenceImport
    erasures: Erasures
    analyses: Analyses
    display: Display
    corrections: Corrections
    models: ModelVersions
    jobs: JobService
    curves: JobCurves
    dicom: DicomAdmin
    seg: SegResults
    sync: DicomSync
    learning: LearningJobs
    system: System


class Runtime:
    """Everything a server process holds, built once from :class:`Settings`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = Path(settings.data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database.open(settings.db_url, data_dir=self.data_dir)
        self.blobs = BlobStore(self.data_dir / "blobs")
        self.queue = SqlJobQueue(self.db.sessions)
        self.pool = ModelPool(self.db, self.blobs, settings.device)
        self.services = self._build()
        self.worker: JobWorker | None = None
        self.scheduler: SyncScheduler | None = None

    def _build(self) -> Services:
        db, blobs, settings = self.db, self.blobs, self.settings
        limits = UploadLimits(settings.max_upload_bytes, settings.max_image_pixels)
        jobs = JobService(self.queue, self.wake_worker)
        images = Images(db, blobs, limits)
        analyses = Analyses(db, blobs, images, self.pool, settings.analysis_threads)
        corrections = Corrections(db, blobs, jobs, self.pool, limits)
        seg = SegResults(db, blobs)
        removal = BlobRemoval(db, blobs)
        references = References(db, blobs, images, removal)
        imports = ReferenceImport(
            db,
            blobs,
            references,
            jobs,
            removal,
            settings.max_import_bytes,
            settings.max_upload_bytes,
        )
        return Services(
            users=Users(db, settings.person_token_days),
            audit=AuditLog(db),
            projects=Projects(db),
            images=images,
            references=references,
            imports=imports,
            erasures=Erasures(db, blobs, removal, jobs),
            analyses=analyses,
            display=Display(db, blobs, images),
            corrections=corrections,
            models=ModelVersions(db, blobs),
            jobs=jobs,
            curves=JobCurves(db, self.queue),
            dicom=DicomAdmin(db, jobs),
            seg=seg,
            sync=DicomSync(db, analyses, corrections, seg),
            learning=LearningJobs(db, blobs, settings.device, settings.max_image_pixels),
            system=System(db, self.queue, lambda: self.worker_running),
        )

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Recover interrupted jobs, sweep leftovers, start the worker and the PACS poller."""
        self.blobs.sweep_temp()
        stale = 0.0 if self.settings.worker_enabled else self.settings.job_stale_s
        recovered = self.queue.recover(stale)
        if recovered:
            log.warning("re-queued %d interrupted job(s): %s", len(recovered), ", ".join(recovered))
        with self.db.read() as s:
            referenced = repo.referenced_blob_keys(s)
        self.blobs.sweep_orphans(referenced)
        if self.settings.worker_enabled:
            svc = self.services
            handlers = build_handlers(svc.learning, svc.sync, svc.imports, svc.erasures)
            self.worker = JobWorker(self.queue, handlers, heartbeat_s=self.settings.job_heartbeat_s)
            self.worker.start()
            self.scheduler = SyncScheduler(self.db, self.queue, self.wake_worker)
            self.scheduler.start()

    def stop(self) -> None:
        """Stop the poller and the worker, finish analyses in flight, close the database."""
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
        if self.worker is not None:
            self.worker.stop(timeout=30)
            self.worker = None
        self.services.analyses.close()
        self.pool.close()
        self.db.dispose()

    def wake_worker(self) -> None:
        """Tell an idle in-process worker that a job was queued."""
        if self.worker is not None:
            self.worker.wake()

    @property
    def worker_running(self) -> bool:
        return self.worker is not None and self.worker.running

    def info(self) -> dict[str, Any]:
        return {"data_dir": str(self.data_dir), "database": self.db.describe()}
