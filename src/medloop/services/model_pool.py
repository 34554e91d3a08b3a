"""The server's models in memory: one predictor per (project, version), one model thread.

Versions are immutable, so a predictor is loaded once (its files read from the blob
store and checked against their sha256) and kept; on a CPU it runs the version's
``model.onnx`` in ONNX Runtime (:mod:`medloop.services.predictors`). Every request
reads the production pointer from the database, so a promotion or roll back made on
any API replica or worker is served by every replica from its next request on. A promotion changes which version
new requests resolve to; requests in flight finish on the predictor they started
with, so none is dropped. Analyses that wait at the same time share a forward pass
(:class:`~medloop.ml.batcher.InferenceBatcher`). Torch is imported on first use.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from medloop.domain.image import Image
from medloop.errors import NoProductionModel
from medloop.services.predictors import load_predictor
from medloop.storage import repo_versions
from medloop.storage.blobs import BlobStore
from medloop.storage.database import Database

if TYPE_CHECKING:
    from medloop.ml.batcher import InferenceBatcher
    from medloop.ml.inference import Prediction, Predictor

__all__ = ["ModelPool"]


class ModelPool:
    """Predictors of every project's versions, loaded on demand.

    Args:
        db: where the versions are recorded.
        blobs: where their weights are.
        device: ``cpu``, ``cuda`` or ``None`` (auto).
        runtime: ``auto`` (ONNX Runtime on a CPU), ``onnx`` or ``torch``.
    """

    def __init__(
        self, db: Database, blobs: BlobStore, device: str | None = None, runtime: str = "auto"
    ) -> None:
        self.db, self.blobs, self.device, self.runtime = db, blobs, device, runtime
        self._predictors: dict[tuple[str, str], Predictor] = {}
        self._batcher: InferenceBatcher | None = None
        self._lock = threading.Lock()
        self._loading = threading.Lock()  # one version loads at a time; predict() never waits
        # ONNX Runtime on a CPU: single-threaded sessions, one batch per core at once.
        self.lanes = 1 if runtime == "torch" else max(1, os.cpu_count() or 1)

    def production(self, project_id: str) -> str | None:
        """The project's production version, or ``None``."""
        with self.db.read() as s:
            return repo_versions.production_version(s, project_id)

    def resolve(self, project_id: str, version: str | None = None) -> tuple[str, Predictor]:
        """``(name, predictor)`` of ``version``, or of production when ``None``.

        Raises:
            NoProductionModel: no version given and nothing in production.
            VersionNotFound: no such version.
        """
        with self.db.read() as s:
            name = version or repo_versions.production_version(s, project_id)
            if name is None:
                raise NoProductionModel(
                    "the project has no model in production yet: train one first"
                )
            cached = self._predictors.get((project_id, name))
            if cached is not None:
                return name, cached
            record = repo_versions.get_version(s, project_id, name)

        def read(filename: str) -> bytes:
            with self.db.read() as s:
                stored = repo_versions.version_file(s, project_id, name, filename)
            return self.blobs.read_bytes(stored.blob_key, stored.sha256)

        with self._loading:
            pred = self._predictors.get((project_id, name))
            if pred is None:
                label = f"{project_id}/{name}"
                pred = load_predictor(
                    record.manifest, record.files, read, self.device, self.runtime, label, 1
                )
                self._predictors[(project_id, name)] = pred
        return name, pred

    def request_thread_init(self) -> None:
        """Set up a thread that will serve analyses: with ONNX Runtime lanes, its torch
        pre- and post-processing runs on one core, beside the session's one thread."""
        if self.lanes > 1:
            from medloop.ml.device import single_threaded

            single_threaded()

    def predict(self, predictor: Predictor, image: Image) -> Prediction:
        """Run ``predictor`` on ``image`` in the shared model thread (blocks until done)."""
        with self._lock:
            if self._batcher is None:
                from medloop.ml.batcher import InferenceBatcher

                self._batcher = InferenceBatcher(lanes=self.lanes)
            batcher = self._batcher
        return batcher.predict(predictor, image)

    def close(self) -> None:
        """Stop the model thread."""
        with self._lock:
            if self._batcher is not None:
                self._batcher.close()
                self._batcher = None
