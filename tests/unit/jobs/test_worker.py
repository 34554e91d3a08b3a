"""The job worker: handlers, progress, failures, cancellation, heartbeats, background thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from medloop.errors import InputError, TrainingError
from medloop.jobs import JobContext, JobRecord, JobWorker, SqlJobQueue
from medloop.jobs.worker import redact_paths


@pytest.fixture
def queue(sessions: sessionmaker[Session]) -> SqlJobQueue:
    return SqlJobQueue(sessions)


Handler = Callable[[JobRecord, JobContext], Mapping[str, Any] | None]


def _worker(queue: SqlJobQueue, **handlers: Handler) -> JobWorker:
    return JobWorker(queue, handlers, heartbeat_s=0.05, poll_s=0.02, worker_id="test-worker")


def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def test_run_once_runs_a_handler(queue: SqlJobQueue, project_id: str) -> None:
    seen: list[float] = []

    def train(job: JobRecord, ctx: JobContext) -> dict[str, Any]:
        for step in range(1, job.options["steps"] + 1):
            ctx.progress(step / job.options["steps"], f"step {step}")
            seen.append(queue.get(job.id).progress)
            time.sleep(0.03)
        return {"version": "v0002", "steps": job.options["steps"]}

    worker = _worker(queue, train=train)
    assert worker.run_once() is None  # nothing queued
    job = queue.enqueue(project_id, "train", {"steps": 4})
    done = worker.run_once()
    assert done is not None and done.id == job.id
    assert done.state == "succeeded" and done.result == {"version": "v0002", "steps": 4}
    assert "step 4" in done.log_tail
    assert "test-worker" not in done.log_tail  # viewers read job logs: no host names
    assert max(seen) > 0  # progress reached the database while the handler ran


def test_handler_exception_fails_the_job(
    queue: SqlJobQueue, project_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(job: JobRecord, ctx: JobContext) -> dict[str, Any]:
        raise RuntimeError("cuda out of memory")

    def refused(job: JobRecord, ctx: JobContext) -> dict[str, Any]:
        raise TrainingError("no reference images to train on")

    worker = _worker(queue, train=broken, evaluate=refused)
    queue.enqueue(project_id, "train")
    queue.enqueue(project_id, "evaluate")
    first = worker.run_once()
    second = worker.run_once()
    assert first is not None and first.state == "failed"
    assert first.error == "RuntimeError: cuda out of memory"
    assert second is not None and second.error == "no reference images to train on"
    assert "cuda out of memory" in caplog.text  # traceback logged


def test_unknown_kind_and_bad_result_fail(queue: SqlJobQueue, project_id: str) -> None:
    worker = _worker(queue, train=lambda job, ctx: {"weights": object()})
    queue.enqueue(project_id, "finetune")
    queue.enqueue(project_id, "train")
    no_handler = worker.run_once()
    bad_result = worker.run_once()
    assert no_handler is not None and "no handler" in (no_handler.error or "")
    assert bad_result is not None and bad_result.state == "failed"
    assert "invalid result" in (bad_result.error or "")


def test_cancel_stops_a_running_handler(queue: SqlJobQueue, project_id: str) -> None:
    started = threading.Event()
    cleaned_up = threading.Event()

    def train(job: JobRecord, ctx: JobContext) -> dict[str, Any]:
        started.set()
        try:
            for _ in range(2000):
                ctx.progress(0.1)
                time.sleep(0.005)
        finally:
            cleaned_up.set()
        raise AssertionError("never cancelled")

    worker = _worker(queue, train=train)
    job = queue.enqueue(project_id, "train")
    worker.start()
    try:
        assert started.wait(10)
        queue.cancel(job.id)
        _wait_for(lambda: queue.get(job.id).state == "cancelled")
    finally:
        assert worker.stop(10)
    assert cleaned_up.is_set()
    assert queue.get(job.id).cancel_requested


def test_cancelled_is_visible_without_progress_calls(queue: SqlJobQueue, project_id: str) -> None:
    def evaluate(job: JobRecord, ctx: JobContext) -> dict[str, Any]:
        queue.cancel(job.id)
        _wait_for(ctx.cancelled)  # the heartbeat thread noticed
        return {"partial": True}

    worker = _worker(queue, evaluate=evaluate)
    queue.enqueue(project_id, "evaluate")
    done = worker.run_once()
    assert done is not None and done.state == "succeeded"  # it chose to finish


def test_heartbeat_thread_keeps_a_silent_job_alive(queue: SqlJobQueue, project_id: str) -> None:
    beats: list[Any] = []

    def silent(job: JobRecord, ctx: JobContext) -> dict[str, Any]:
        beats.append(queue.get(job.id).heartbeat_at)
        time.sleep(0.4)
        beats.append(queue.get(job.id).heartbeat_at)
        return {}

    worker = _worker(queue, train=silent)
    queue.enqueue(project_id, "train")
    assert worker.run_once() is not None
    assert beats[1] > beats[0]


def test_background_worker_drains_the_queue(queue: SqlJobQueue, project_id: str) -> None:
    ran: list[str] = []

    def evaluate(job: JobRecord, ctx: JobContext) -> dict[str, Any]:
        ran.append(job.id)
        return {"ok": True}

    worker = _worker(queue, evaluate=evaluate)
    ids = [queue.enqueue(project_id, "evaluate").id for _ in range(5)]
    worker.start()
    worker.start()  # idempotent
    try:
        worker.wake()
        _wait_for(lambda: all(queue.get(i).state == "succeeded" for i in ids))
    finally:
        assert worker.stop(10)
    assert ran == ids
    assert not worker.running and worker.current_job_id is None


def test_worker_settings_are_checked(queue: SqlJobQueue) -> None:
    with pytest.raises(InputError, match="heartbeat_s"):
        JobWorker(queue, {}, heartbeat_s=0)


def test_job_logs_and_errors_show_no_server_paths(queue: SqlJobQueue, project_id: str) -> None:
    """Every role of a project reads its jobs' logs: server file paths are cut there."""

    def train(job: JobRecord, ctx: JobContext) -> dict[str, Any]:
        ctx.log("reading /srv/medloop/blobs/ab/cd/abcdef0123 for v0002")
        raise FileNotFoundError(2, "No such file or directory", "/srv/medloop/medloop.db")

    job = queue.enqueue(project_id, "train", {})
    done = _worker(queue, train=train).run_once()
    assert done is not None and done.id == job.id and done.state == "failed"
    for text in (done.log_tail, done.error or ""):
        assert "/srv" not in text and "medloop/blobs" not in text, text
    assert "…/abcdef0123" in done.log_tail and "…/medloop.db" in (done.error or "")
    assert "FileNotFoundError" in (done.error or "")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("cannot read /tmp/x/y.png (truncated)", "cannot read …/y.png (truncated)"),
        (
            "QIDO-RS at http://pacs:8042/dicom-web/studies",
            "QIDO-RS at http://pacs:8042/dicom-web/studies",
        ),
        ("relative a/b/c stays", "relative a/b/c stays"),
        ("home ~/secret/file.txt", "home …/file.txt"),
    ],
)
def test_redact_paths(text: str, shown: str) -> None:
    assert redact_paths(text) == shown
