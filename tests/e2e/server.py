"""A real ``medloop serve`` on a free loopback port, with users, a project and a tiny model.

Everything is set up the way a deployment would be: users with ``medloop users add``,
the project, reference pairs and the training job through the public API.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ..integration.conftest import write_disc_dataset

__all__ = ["PROJECT", "LiveServer", "start_bare_server", "start_server"]

PROJECT = "discs"
SETTINGS = {
    "training": {"steps": 100, "patch_size": [32], "channels": [8, 16, 32]},
    "learning": {"steps": 10, "held_out_share": 0.5, "replay_size": 4},
    "finetune_every": 2,
}
LABELS = [{"value": 1, "name": "disc", "color": "#ff3b30"}]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _medloop() -> list[str]:
    script = Path(sys.executable).with_name("medloop")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", "from medloop.cli import main; main()"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDLOOP_")}
    env.update(
        {
            "MEDLOOP_DEVICE": "cpu",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    dataset: Path
    log_path: Path
    proc: subprocess.Popen[bytes]
    tokens: dict[str, str] = field(default_factory=dict)
    project_id: str = ""

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def api(self, method: str, path: str, who: str = "admin", **kw: Any) -> httpx.Response:
        return httpx.request(
            method, f"{self.url}/api/v1{path}", headers=self.h(who), timeout=60.0, **kw
        )

    def project_path(self, rest: str = "") -> str:
        return f"/projects/{PROJECT}{rest}"

    def wait_job(
        self, job_id: str, timeout: float = 600.0, project: str = PROJECT
    ) -> dict[str, Any]:
        """The job once it has ended (succeeded, failed or cancelled), polled every 0.2 s."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            job: dict[str, Any] = self.api("GET", f"/projects/{project}/jobs/{job_id}").json()
            if job["state"] in ("succeeded", "failed", "cancelled"):
                return job
            time.sleep(0.2)
        raise TimeoutError(f"job {job_id} not done after {timeout} s:\n{self.log_tail()}")

    def analyze(self, image: Path, who: str = "annotator") -> dict[str, Any]:
        with open(image, "rb") as fh:
            r = self.api(
                "POST", self.project_path("/analyses"), who, files={"file": (image.name, fh)}
            )
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _users_add(data_dir: Path, name: str, role: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*_medloop(), "users", "add", name, "--role", role, "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )


def _token(name: str, proc: subprocess.Popen[str]) -> str:
    """The token ``medloop users add`` prints alone on its last line."""
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, f"users add {name} failed: {err}{out}"
    return out.strip().splitlines()[-1].strip()


def _serve(data_dir: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                *_medloop(),
                "serve",
                "--data-dir",
                str(data_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_env(),
            start_new_session=True,
        )
    return proc, port


def start_server(root: Path) -> LiveServer:
    """Start ``medloop serve``, create the project, add reference pairs and train version 1."""
    data_dir = root / "srv"
    data_dir.mkdir(parents=True)
    # The first ``users add`` creates the database; the others run beside the server's start.
    tokens = {"admin": _token("admin", _users_add(data_dir, "admin", "admin"))}
    dataset = write_disc_dataset(root / "data", n_train=6, n_val=2, n_test=8)
    log_path = root / "serve.log"
    proc, port = _serve(data_dir, log_path)
    server = LiveServer(f"http://127.0.0.1:{port}", data_dir, dataset, log_path, proc, tokens)
    try:
        procs = {name: _users_add(data_dir, name, name) for name in ("annotator", "viewer")}
        _wait_healthy(server)
        for name, p in procs.items():
            tokens[name] = _token(name, p)
        _build_project(server)
    except BaseException:
        server.stop()
        raise
    return server


def start_bare_server(root: Path) -> LiveServer:
    """A fresh install as the README's quick start leaves it: ``medloop serve`` and the first
    admin (``medloop users add admin --role admin``), nothing else."""
    data_dir = root / "srv"
    data_dir.mkdir(parents=True)
    tokens = {"admin": _token("admin", _users_add(data_dir, "admin", "admin"))}
    log_path = root / "serve.log"
    proc, port = _serve(data_dir, log_path)
    server = LiveServer(f"http://127.0.0.1:{port}", data_dir, root, log_path, proc, tokens)
    try:
        _wait_healthy(server)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_healthy(server: LiveServer, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if server.proc.poll() is not None:
            raise RuntimeError(f"medloop serve exited:\n{server.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/healthz", timeout=2.0).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"medloop serve not healthy:\n{server.log_tail()}")


def _build_project(server: LiveServer) -> None:
    r = server.api(
        "POST",
        "/projects",
        json={"name": PROJECT, "labels": LABELS, "image_kind": "microscopy", **SETTINGS},
    )
    assert r.status_code == 201, r.text
    server.project_id = r.json()["id"]
    data = server.dataset
    for i, split in enumerate(["train"] * 6 + ["val"] * 2):
        name = f"case ({i}).png"
        with open(data / "images" / name, "rb") as fi, open(data / "masks" / name, "rb") as fm:
            r = server.api(
                "POST",
                server.project_path("/reference"),
                files={"image": (name, fi), "mask": (name, fm)},
                data={"split": split},
            )
        assert r.status_code == 201, r.text
    job = server.api("POST", server.project_path("/jobs"), json={"kind": "train"}).json()
    done = server.wait_job(job["id"])
    assert done["state"] == "succeeded", done
