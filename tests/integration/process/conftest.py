"""Real ``medloop serve`` processes with users, a project and a tiny trained model.

A session-wide template is built once: ``medloop users add`` makes the admin, the
server is started, the project is created over HTTP (the annotator and the viewer
are added with the CLI while the server runs), reference pairs are uploaded and a
tiny ``train`` job runs; then the server stops with SIGTERM (it must exit 0).
Each test module gets its own copy of that data folder and its own server process,
so a test may ``kill -9`` its server without disturbing the others.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import write_disc_dataset
from .serverproc import CLEAN_EXITS, ServerProcess, upload_reference_pairs, users_add

PROJECT = "discs"
# Tiny model, and no automatic fine-tune: jobs start only when a test asks.
SETTINGS: dict[str, Any] = {
    "training": {"steps": 30, "patch_size": [32], "channels": [8, 16, 32]},
    "learning": {"steps": 10, "replay_size": 4},
    "finetune_every": 1000,
}
FINISHED = ("succeeded", "failed", "cancelled")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Template:
    data_dir: Path
    dataset: Path
    tokens: dict[str, str]
    project_id: str


@dataclass
class Live:
    """A running server process made from the template."""

    srv: ServerProcess
    tokens: dict[str, str]
    project_id: str
    dataset: Path

    project = PROJECT

    @property
    def url(self) -> str:
        return self.srv.url

    @property
    def data_dir(self) -> Path:
        return self.srv.data_dir

    def h(self, who: str) -> dict[str, str]:
        return bearer(self.tokens[who])

    def client(self, who: str = "admin", timeout: float = 120.0) -> httpx.Client:
        return httpx.Client(base_url=self.srv.url, headers=self.h(who), timeout=timeout)

    def api(self, path: str = "") -> str:
        return f"/api/v1/projects/{PROJECT}{path}"

    def image(self, i: int) -> bytes:
        return (self.dataset / "images" / f"case ({i}).png").read_bytes()

    def mask(self, i: int) -> bytes:
        return (self.dataset / "masks" / f"case ({i}).png").read_bytes()


def wait_job(c: httpx.Client, job_id: str, timeout: float = 180.0) -> dict[str, Any]:
    """Poll a job until it is finished; returns its last state."""
    end = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < end:
        r = c.get(f"/api/v1/projects/{PROJECT}/jobs/{job_id}")
        assert r.status_code == 200, r.text
        job = r.json()
        if job["state"] in FINISHED:
            return job
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} not finished after {timeout} s: {job}")


def _build_template(root: Path) -> Template:
    dataset = write_disc_dataset(root / "dataset", n_train=6, n_val=2, n_test=4)
    data_dir = root / "srv"
    tokens = {"admin": users_add(data_dir, "admin", "admin")}
    srv = ServerProcess(data_dir, root / "template-server.log")
    srv.start()
    try:
        with httpx.Client(base_url=srv.url, headers=bearer(tokens["admin"]), timeout=120) as c:
            r = c.post(
                "/api/v1/projects",
                json={
                    "name": PROJECT,
                    "labels": [{"value": 1, "name": "disc", "color": "#ff0000"}],
                    "image_kind": "microscopy",
                    **SETTINGS,
                },
            )
            assert r.status_code == 201, r.text
            project_id = r.json()["id"]
            # Users of a project are added with the CLI while the server runs (SQLite WAL).
            tokens["annotator"] = users_add(data_dir, "annotator", "annotator", PROJECT)
            tokens["viewer"] = users_add(data_dir, "viewer", "viewer", PROJECT)
            upload_reference_pairs(c, PROJECT, dataset, ["train"] * 6 + ["val"] * 2)
            r = c.post(f"/api/v1/projects/{PROJECT}/jobs", json={"kind": "train"})
            assert r.status_code == 202, r.text
            job = wait_job(c, r.json()["id"])
            assert job["state"] == "succeeded", job
            prod = c.get(f"/api/v1/projects/{PROJECT}").json()["production_version"]
            assert prod == "v0001"
    except BaseException:
        srv.kill()
        raise
    rc = srv.stop()
    assert rc in CLEAN_EXITS, f"SIGTERM should stop the server cleanly, got {rc}:\n{srv.log_tail()}"
    assert "job worker" in srv.log_tail(300) and "stopped" in srv.log_tail(300), srv.log_tail()
    return Template(data_dir, dataset, tokens, project_id)


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return _build_template(tmp_path_factory.mktemp("proc-template"))


def start_live(template: Template, root: Path) -> Live:
    data_dir = root / "srv"
    shutil.copytree(template.data_dir, data_dir)
    # Job progress reaches the database every 0.25 s (so a test sees a job running).
    env = {"MEDLOOP_JOB_HEARTBEAT_S": "0.25"}
    srv = ServerProcess(data_dir, root / "server.log", env=env).start()
    return Live(srv, dict(template.tokens), template.project_id, template.dataset)


@pytest.fixture(scope="module")
def live(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A server process of its own for the test module, on a copy of the template."""
    lv = start_live(template, tmp_path_factory.mktemp("proc-live"))
    try:
        yield lv
    finally:
        lv.srv.stop()
