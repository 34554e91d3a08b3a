"""The composition root of the server: builds storage, jobs, model access from Settings.

``Runtime(settings)`` opens (and migrates) the database, the blob store and the job
queue; ``start()`` recovers interrupted jobs, sweeps temporary and orphan blobs, and
starts the in-process job worker; ``stop()`` stops it. Nothing here runs at import.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from medloop.jobs import JobWorker, SqlJobQueue
from medloop.registry import ModelRegistry
from medloop.settings import Settings
from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobStore
from medloop.storage.db import SQLITE_BEGIN_OPTION, make_engine, migrate, session_factory

if TYPE_CHECKING:
    from medloop.dicom.scheduler import SyncScheduler
    from medloop.ml.batcher import InferenceBatcher
    from medloop.ml.inference import Predictor

__all__ = ["Runtime"]

log = logging.getLogger(__name__)


class Runtime:
    """Everything a server process holds, built once from :class:`Settings`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = Path(settings.data_dir).resolve()  # blob paths go into manifests
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(settings.db_url)
        migrate(self.engine)
        self.sessions = session_factory(self.engine)
        # Read-only work takes no write lock (SQLite: a deferred transaction).
        self.read_sessions = session_factory(
            self.engine.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})
        )
        self.blobs = BlobStore(self.data_dir / "blobs")
        self.queue = SqlJobQueue(self.sessions)
        self.analysis_pool = ThreadPoolExecutor(
            max_workers=max(1, settings.analysis_threads), thread_name_prefix="medloop-analysis"
        )
        self._predictors: dict[tuple[str, str], Predictor] = {}
        self._batcher: InferenceBatcher | None = None
        self._predictor_lock = threading.Lock()
        self.worker: JobWorker | None = None
        self.scheduler: SyncScheduler | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        from medloop.services.job_handlers import build_handlers

        self.blobs.sweep_temp()
        recovered = self.queue.recover(
            0.0 if self.settings.worker_enabled else self.settings.job_stale_s
        )
        if recovered:
            log.warning("re-queued %d interrupted job(s): %s", len(recovered), ", ".join(recovered))
        with self.session() as s:
            referenced = repo.referenced_blob_keys(s)
        self.blobs.sweep_orphans(referenced)
        for reg in (self.data_dir / "projects").glob("*/registry"):
            ModelRegistry(reg)  # sweeps half-written versions
        if self.settings.worker_enabled:
            self.worker = JobWorker(
                self.queue, build_handlers(self), heartbeat_s=self.settings.job_heartbeat_s
            )
            self.worker.start()
            from medloop.dicom.scheduler import SyncScheduler

            self.scheduler = SyncScheduler(self)  # polls connected DICOMweb servers
            self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
        if self.worker is not None:
            self.worker.stop(timeout=30)
            self.worker = None
        self.analysis_pool.shutdown(wait=True, cancel_futures=False)
        if self._batcher is not None:
            self._batcher.close()
        self.engine.dispose()

    # -- helpers ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A short transaction: committed on success, rolled back on error."""
        s = self.sessions()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    @contextlib.contextmanager
    def read_session(self) -> Iterator[Session]:
        """A read-only transaction that never blocks on, or blocks, writers."""
        s = self.read_sessions()
        try:
            yield s
            s.commit()  # ends the read; nothing written, and loaded rows stay usable
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def project_dir(self, project_id: str) -> Path:
        return self.data_dir / "projects" / project_id

    def registry(self, project_id: str) -> ModelRegistry:
        return ModelRegistry(self.project_dir(project_id) / "registry")

    def production_version(self, project_id: str) -> str | None:
        reg_dir = self.project_dir(project_id) / "registry"
        if not (reg_dir / "state.json").exists():
            return None
        from medloop.errors import NoProductionModel

        try:
            return self.registry(project_id).production()
        except NoProductionModel:
            return None

    def predictor(self, project_id: str, version: str | None = None) -> tuple[str, Predictor]:
        """The predictor of ``version`` (default production), loaded once and cached.

        A promotion changes which version new requests get; requests in flight finish
        on the predictor they started with, so none is dropped.
        """
        from medloop.ml.inference import Predictor

        reg = self.registry(project_id)
        rec = reg.resolve(version)
        key = (project_id, rec.name)
        with self._predictor_lock:
            pred = self._predictors.get(key)
            if pred is None:
                pred = Predictor.load(
                    reg.manifest(rec.name), rec.weights_path, self.settings.device
                )
                self._predictors[key] = pred
        return rec.name, pred

    def batcher(self) -> InferenceBatcher:
        """The model thread that batches concurrent analyses (started on first use)."""
        with self._predictor_lock:
            if self._batcher is None:
                from medloop.ml.batcher import InferenceBatcher

                self._batcher = InferenceBatcher()
            return self._batcher

    def wake_worker(self) -> None:
        if self.worker is not None:
            self.worker.wake()

    def info(self) -> dict[str, Any]:
        return {
            "data_dir": str(self.data_dir),
            "database": self.engine.url.render_as_string(hide_password=True),
        }
