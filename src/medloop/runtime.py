"""The composition root of the server: builds every service from :class:`Settings`.

``Runtime(settings)`` opens (and migrates) the database, the blob store and the job
queue and wires the services to exactly the collaborators each uses; ``start()``
recovers interrupted jobs, sweeps temporary and orphan blobs, and starts the
in-process job worker and the DICOMweb poller; ``stop()`` stops them. Nothing here
runs at import, and nothing but this module knows how the parts fit together.

Three shapes, one code base:

- embedded (no ``broker_url``): the job worker runs in the server process;
- ``serve --no-worker`` + ``medloop worker`` without a broker: workers poll the jobs
  table (several machines on one PostgreSQL);
- distributed (``broker_url``): API replicas run the :class:`~medloop.jobs.Dispatcher`
  (job ids to Celery on Redis, dead workers' jobs re-queued) and ``medloop worker``
  processes run the jobs (:meth:`Runtime.job_runner`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medloop.jobs import Dispatcher, JobWorker, SqlJobQueue, SyncScheduler
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
from medloop.services.refine import Refinements
from medloop.services.secrets import Secrets
from medloop.services.system import System
from medloop.services.uploads import UploadLimits
from medloop.services.users import Users
from medloop.services.viewer_copies import ViewerCopies
from medloop.settings import Settings
from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobStore
from medloop.storage.database import Database
from medloop.storage.secret_keys import ServerKeys

__all__ = ["Runtime", "Services"]

log = logging.getLogger(__name__)

TEMP_GRACE_S = 3600.0
"""Where other processes share the blob folder, only temporary files this old are swept."""


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
    refinements: Refinements
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
    secrets: Secrets


class Runtime:
    """Everything a server process holds, built once from :class:`Settings`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = Path(settings.data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database.open(settings.db_url, data_dir=self.data_dir)
        try:
            self.secrets = self._open_secrets()
        except BaseException:
            self.db.dispose()
            raise
        self.blobs = BlobStore(self.data_dir / "blobs")
        self.queue = SqlJobQueue(self.db.sessions)
        self.pool = ModelPool(self.db, self.blobs, settings.device, settings.serving_runtime)
        self.services = self._build()
        self.worker: JobWorker | None = None
        self.scheduler: SyncScheduler | None = None
        self.dispatcher: Dispatcher | None = None
        self._sender: Any = None

    def _open_secrets(self) -> Secrets:
        """The server's keys; stored secrets checked, and sealed where still in plain text."""
        settings = self.settings
        key = settings.secret_key.get_secret_value() if settings.secret_key else None
        secrets = Secrets(self.db, ServerKeys.load(key, settings.key_file))
        sealed = secrets.check_and_seal()
        if sealed:
            log.warning("sealed the plain-text secrets of %d project(s)", sealed)
        return secrets

    def _build(self) -> Services:
        db, blobs, settings, box = self.db, self.blobs, self.settings, self.secrets.box
        limits = UploadLimits(settings.max_upload_bytes, settings.max_image_pixels)
        jobs = JobService(self.queue, self.wake_worker)
        images = Images(db, blobs, limits, box)
        removal = BlobRemoval(db, blobs)
        viewer = ViewerCopies(db, blobs, removal)
        analyses = Analyses(
            db,
            blobs,
            images,
            self.pool,
            settings.analysis_threads,
            settings.max_queued_analyses,
            viewer,
        )
        corrections = Corrections(db, blobs, jobs, self.pool, limits)
        seg = SegResults(db, blobs)
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
            refinements=Refinements(db, blobs, analyses, self.pool),
            display=Display(db, blobs, images, viewer),
            corrections=corrections,
            models=ModelVersions(db, blobs),
            jobs=jobs,
            curves=JobCurves(db, self.queue),
            dicom=DicomAdmin(db, jobs, box, settings.dicomweb_hosts),
            seg=seg,
            sync=DicomSync(db, analyses, corrections, seg, box, settings.dicomweb_hosts),
            learning=LearningJobs(db, blobs, settings.device, settings.max_image_pixels),
            system=System(db, self.queue, lambda: self.worker_running),
            secrets=self.secrets,
        )

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def distributed(self) -> bool:
        """Whether jobs go to Celery workers through a broker."""
        return bool(self.settings.broker_url)

    def start(self, worker: bool | None = None) -> None:
        """Recover interrupted jobs, sweep leftovers, start the worker (or, distributed,
        the dispatcher) and the PACS poller. ``worker`` overrides ``worker_enabled``."""
        run_jobs = self.settings.worker_enabled if worker is None else worker
        # Alone, this process owns every job and temporary file; in a cluster others may
        # be working right now, so only the stale ones are taken back.
        alone = run_jobs and not self.distributed
        self.blobs.sweep_temp(0.0 if alone else TEMP_GRACE_S)
        recovered = self.queue.recover(0.0 if alone else self.settings.job_stale_s)
        if recovered:
            log.warning("re-queued %d interrupted job(s): %s", len(recovered), ", ".join(recovered))
        with self.db.read() as s:
            referenced = repo.referenced_blob_keys(s)
        self.blobs.sweep_orphans(referenced)
        if self.distributed:
            self._start_dispatcher()
        elif run_jobs:
            svc = self.services
            handlers = build_handlers(svc.learning, svc.sync, svc.imports, svc.erasures)
            self.worker = JobWorker(self.queue, handlers, heartbeat_s=self.settings.job_heartbeat_s)
            self.worker.start()
        if self.distributed or run_jobs:
            self.scheduler = SyncScheduler(self.db, self.queue, self.wake_worker)
            self.scheduler.start()

    def _start_dispatcher(self) -> None:
        from medloop.jobs.celery_app import CelerySender, make_celery

        settings = self.settings
        self._sender = CelerySender(make_celery(str(settings.broker_url)))
        self.dispatcher = Dispatcher(
            self.queue, self._sender, settings.job_stale_s, settings.job_resend_s
        )
        self.dispatcher.start()

    def job_runner(self) -> Callable[[str], None]:
        """What a Celery worker process runs for a job id: claim that row, run it here."""
        svc = self.services
        handlers = build_handlers(svc.learning, svc.sync, svc.imports, svc.erasures)
        worker = JobWorker(self.queue, handlers, heartbeat_s=self.settings.job_heartbeat_s)

        def run(job_id: str) -> None:
            job = self.queue.claim_job(job_id, worker.worker_id)
            if job is None:
                log.info("job %s is not claimable (done, running or waiting): dropped", job_id)
                return
            worker.run_claimed(job)

        return run

    def stop(self) -> None:
        """Stop the poller and the worker, finish analyses in flight, close the database."""
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
        if self.dispatcher is not None:
            self.dispatcher.stop()
            self.dispatcher = None
            self._sender.close()
        if self.worker is not None:
            self.worker.stop(timeout=30)
            self.worker = None
        self.services.analyses.close()
        self.pool.close()
        self.db.dispose()

    def wake_worker(self) -> None:
        """Tell an idle in-process worker (or the dispatcher) that a job was queued."""
        if self.worker is not None:
            self.worker.wake()
        if self.dispatcher is not None:
            self.dispatcher.wake()

    @property
    def worker_running(self) -> bool:
        """Whether this process runs jobs or, distributed, hands them to the workers."""
        if self.dispatcher is not None:
            return self.dispatcher.running
        return self.worker is not None and self.worker.running

    def info(self) -> dict[str, Any]:
        return {"data_dir": str(self.data_dir), "database": self.db.describe()}
