"""``medloop serve --no-worker`` and a separate ``medloop worker`` on one data folder, no broker:
the API queues, the worker (polling the jobs table) runs; jobs wait while no worker runs."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx

from .conftest import Template, bearer, wait_job
from .serverproc import ServerProcess, child_env, medloop_cmd


def test_an_api_without_worker_and_a_worker_process(template: Template, tmp_path: Path) -> None:
    data_dir = tmp_path / "srv"
    shutil.copytree(template.data_dir, data_dir)
    env = {"MEDLOOP_JOB_HEARTBEAT_S": "0.25"}
    api = ServerProcess(data_dir, tmp_path / "api.log", env=env, args=["--no-worker"]).start()
    worker: subprocess.Popen[bytes] | None = None
    try:
        assert httpx.get(f"{api.url}/healthz", timeout=30).json()["worker"] is False
        with httpx.Client(
            base_url=api.url, headers=bearer(template.tokens["admin"]), timeout=120
        ) as c:
            r = c.post("/api/v1/projects/discs/jobs", json={"kind": "evaluate"})
            assert r.status_code == 202, r.text
            job_id = r.json()["id"]
            time.sleep(1.5)
            assert c.get(f"/api/v1/projects/discs/jobs/{job_id}").json()["state"] == "queued"
            cmd = [*medloop_cmd(), "worker", "--data-dir", str(data_dir)]
            with open(tmp_path / "worker.log", "wb") as log:
                worker = subprocess.Popen(
                    cmd, stdout=log, stderr=subprocess.STDOUT, env=child_env(**env)
                )
            job = wait_job(c, job_id)
            assert job["state"] == "succeeded", job
            assert job["result"]["version"] == "v0001"
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0, (tmp_path / "worker.log").read_text()[-3000:]
        assert "polling the jobs table" in (tmp_path / "worker.log").read_text()
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.wait(30)
        api.stop()
