"""The SDK's model-version and job endpoints."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from medloop.client._base import (
    _CHUNK,
    ClientBase,
    _limits,
    _seg,
)
from medloop.client.admin_models import (
    CurveOut,
)
from medloop.client.errors import (
    JobTimeout,
    ServerError,
    TransportError,
)
from medloop.client.models import (
    JobOut,
    ModelVersionOut,
    Page,
)

__all__ = ["VersionsApi"]


class VersionsApi(ClientBase):
    """The SDK's model-version and job endpoints."""

    # -- models --------------------------------------------------------------------------

    def list_models(
        self, project: str, limit: int | None = None, offset: int | None = None
    ) -> Page[ModelVersionOut]:
        """``GET .../models``: every version with status, parent, metrics and lineage."""
        return self._json(
            "GET",
            f"{self._p(project)}/models",
            Page[ModelVersionOut],
            params=_limits(limit, offset),
        )

    def get_model(self, project: str, version: str) -> ModelVersionOut:
        """``GET .../models/{v}`` (``v0003``), with its gate report."""
        return self._json("GET", self._m(project, version), ModelVersionOut)

    def promote(self, project: str, version: str, reason: str | None = None) -> ModelVersionOut:
        """``POST .../models/{v}/promote`` (admins): make ``version`` production.

        A version the gate rejected needs a ``reason`` (kept in the model's events).
        """
        kw: dict[str, Any] = {} if reason is None else {"json": {"reason": reason}}
        return self._json("POST", f"{self._m(project, version)}/promote", ModelVersionOut, **kw)

    def rollback(self, project: str) -> ModelVersionOut:
        """``POST .../models/rollback`` (admins): back to the previous production; returns it."""
        return self._json("POST", f"{self._p(project)}/models/rollback", ModelVersionOut)

    def download_model(self, project: str, version: str, dest: str | os.PathLike[str]) -> Path:
        """``GET .../models/{v}/download``: stream the version's zip to ``dest``.

        ``dest`` is a file path, or an existing folder (the file is then ``{version}.zip``
        in it). The file appears only when complete (temporary file, then rename).

        Example::

            path = c.download_model("knee", "v0003", Path("models"))  # models/v0003.zip
        """
        target = Path(dest)
        if target.is_dir():
            target = target / f"{_seg(version, 'version')}.zip"
        target.parent.mkdir(parents=True, exist_ok=True)
        url = self._url(f"{self._m(project, version)}/download")
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                try:
                    with self._http.stream("GET", url, headers=self._headers(accept="*/*")) as resp:
                        if resp.status_code >= 400:
                            resp.read()
                            raise self._api_error(resp)
                        for chunk in resp.iter_bytes(_CHUNK):
                            out.write(chunk)
                except (httpx.TransportError, httpx.InvalidURL) as err:
                    raise TransportError(f"GET {url} failed: {err}") from err
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return target

    def _m(self, project: str, version: str) -> str:
        return f"{self._p(project)}/models/{_seg(version, 'version')}"

    # -- jobs ----------------------------------------------------------------------------

    def create_job(
        self, project: str, kind: str, options: Mapping[str, Any] | None = None
    ) -> JobOut:
        """``POST .../jobs``: queue a ``train``, ``finetune``, ``evaluate`` or ``dicomweb_sync`` job.

        Options left out take the project's settings; bad ones answer 422
        (:class:`~medloop.client.BadRequest`) and nothing is queued.

        Example::

            job = c.create_job("knee", "finetune", {"steps": 300})
            job = c.wait_for_job("knee", job.id)
            print(job.state, job.result)
        """
        body = {"kind": kind, "options": dict(options or {})}
        return self._json("POST", f"{self._p(project)}/jobs", JobOut, json=body)

    def list_jobs(
        self, project: str, limit: int | None = None, offset: int | None = None
    ) -> Page[JobOut]:
        """``GET .../jobs``: the project's jobs, newest first."""
        return self._json(
            "GET", f"{self._p(project)}/jobs", Page[JobOut], params=_limits(limit, offset)
        )

    def get_job(self, project: str, job_id: str) -> JobOut:
        """``GET .../jobs/{j}``: state, progress, log tail, result or error."""
        return self._json("GET", self._j(project, job_id), JobOut)

    def cancel_job(self, project: str, job_id: str) -> JobOut:
        """``POST .../jobs/{j}/cancel``."""
        return self._json("POST", f"{self._j(project, job_id)}/cancel", JobOut)

    def job_curve(self, project: str, job_id: str, after: int = 0) -> CurveOut:
        """``GET .../jobs/{j}/curve``: a learning job's loss and validation Dice by step."""
        return self._json(
            "GET", f"{self._j(project, job_id)}/curve", CurveOut, params={"after": after}
        )

    def _j(self, project: str, job_id: str) -> str:
        return f"{self._p(project)}/jobs/{_seg(job_id, 'job')}"

    def wait_for_job(
        self,
        project: str,
        job_id: str,
        timeout: float = 600,
        poll: float = 1.0,
        on_update: Callable[[JobOut], None] | None = None,
    ) -> JobOut:
        """Poll a job until it is succeeded, failed or cancelled; return its last state.

        ``on_update`` is called with every state polled. After the first successful poll,
        connection errors and 5xx answers (a server restarting) are retried until
        ``timeout``. Raises :class:`~medloop.client.errors.JobTimeout` (a ``TimeoutError``)
        when ``timeout`` seconds pass first; a failed job is returned, not raised.

        Example::

            job = c.wait_for_job("knee", job_id, on_update=lambda j: print(j.progress))
            if job.state != "succeeded":
                print(job.error)
        """
        deadline = time.monotonic() + timeout
        job = self.get_job(project, job_id)
        while True:
            if on_update is not None:
                on_update(job)
            if job.finished:
                return job
            last_error: Exception | None = None
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise JobTimeout(
                        f"job {job_id} is still {job.state} "
                        f"({job.progress:.0%}) after {timeout:g} s",
                        job,
                    ) from last_error
                time.sleep(max(0.0, min(poll, remaining)))
                try:
                    job = self.get_job(project, job_id)
                    break
                except (TransportError, ServerError) as err:
                    last_error = err
