"""Periodic DICOMweb syncs: the scheduler queues them, the worker runs them."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from medloop.domain.dicom import DicomSettings
from medloop.jobs import SyncScheduler
from medloop.runtime import Runtime
from medloop.settings import Settings
from medloop.storage import repo_dicom

from .conftest import SETTINGS, DicomServer


def _closed_port() -> int:
    """A loopback port nobody listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def bare_runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(
        Settings(data_dir=tmp_path / "srv", worker_enabled=False, dicomweb_hosts=["127.0.0.1"])
    )
    yield rt
    rt.stop()


def _connect(rt: Runtime, project_id: str, **web: object) -> None:
    raw = {"dicomweb": {"url": f"http://127.0.0.1:{_closed_port()}/dicom-web", **web}}
    with rt.db.write() as s:
        settings = DicomSettings.load(raw, None)
        repo_dicom.set_dicom_settings(s, project_id, settings.stored(rt.secrets.box))


def test_tick_queues_due_syncs_and_backs_off_after_outages(bare_runtime: Runtime) -> None:
    rt = bare_runtime
    pid = rt.services.projects.create("polled", SETTINGS).project.id
    idle = rt.services.projects.create("idle", SETTINGS).project.id
    _connect(rt, pid, poll_interval_s=60)
    _connect(rt, idle, enabled=False)
    scheduler = SyncScheduler(rt.db, rt.queue)
    assert scheduler.tick(now=0.0) == [pid]
    assert scheduler.tick(now=30.0) == []
    assert scheduler.tick(now=61.0) == [pid]  # coalesced: still one queued job
    jobs = [j for j in rt.queue.list(pid) if j.kind == "dicomweb_sync"]
    assert len(jobs) == 1
    job = rt.queue.claim("test")
    assert job is not None
    rt.queue.succeed(job.id, {"pacs_unavailable": True}, attempt=job.attempts)
    assert scheduler.tick(now=61.0 + 90) == []  # one outage: the interval doubles to 120 s
    assert scheduler.tick(now=61.0 + 121) == [pid]


def test_sync_job_reports_an_unreachable_pacs(
    dicom_server: DicomServer, new_project: Callable[[str], str]
) -> None:
    pid = new_project("unreachable")
    _connect(dicom_server.runtime, pid, enabled=False)
    r = dicom_server.client.post(
        "/api/v1/projects/unreachable/dicomweb/sync", headers=dicom_server.h()
    )
    assert r.status_code == 202, r.text
    job = dicom_server.wait_job_in("unreachable", r.json()["id"])
    assert job["kind"] == "dicomweb_sync" and job["state"] == "succeeded"
    assert job["result"]["pacs_unavailable"] is True
    assert "QIDO-RS" in job["result"]["error"]


def test_sync_needs_a_server_and_the_scheduler_runs_with_the_worker(
    dicom_server: DicomServer,
) -> None:
    r = dicom_server.client.post("/api/v1/projects/ct/dicomweb/sync", headers=dicom_server.h())
    assert r.status_code == 400 and "no DICOMweb server" in r.json()["error"]["message"]
    assert any(t.name == "medloop-dicomweb" and t.is_alive() for t in threading.enumerate())
