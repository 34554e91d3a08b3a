"""A real ``medloop serve`` child process: start, stop (SIGTERM), kill -9, restart.

Used by the process tests; it speaks HTTP only (httpx), like a device would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from bench.cluster import free_port, medloop_cmd

__all__ = [
    "CLEAN_EXITS",
    "ServerProcess",
    "child_env",
    "free_port",
    "medloop_cmd",
    "upload_reference_pairs",
    "users_add",
]


CLEAN_EXITS = (0, -signal.SIGTERM)
"""Exit statuses of a graceful stop after SIGTERM."""


def child_env(threads: int = 1, **extra: str) -> dict[str, str]:
    """The environment of a child: no inherited ``MEDLOOP_*``, CPU, ``threads`` BLAS/OpenMP threads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDLOOP_")}
    env.update(
        {
            "MEDLOOP_DEVICE": "cpu",
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def users_add(
    data_dir: Path, name: str, role: str, project: str | None = None, timeout: float = 120
) -> str:
    """Run ``medloop users add``; returns the token printed alone on the last line."""
    cmd = [*medloop_cmd(), "users", "add", name, "--role", role, "--data-dir", str(data_dir)]
    if project is not None:
        cmd += ["--project", project]
    out = subprocess.run(
        cmd, capture_output=True, text=True, env=child_env(), timeout=timeout, check=False
    )
    assert out.returncode == 0, f"users add failed ({out.returncode}): {out.stderr}{out.stdout}"
    lines = out.stdout.strip().splitlines()
    assert lines, f"users add printed nothing: {out.stderr}"
    return lines[-1].strip()


def upload_reference_pairs(
    c: httpx.Client, project: str, dataset: Path, splits: Sequence[str]
) -> None:
    """Upload ``dataset``'s pairs ``case (i).png`` with ``splits[i]`` as reference pairs."""
    for i, split in enumerate(splits):
        name = f"case ({i}).png"
        r = c.post(
            f"/api/v1/projects/{project}/reference",
            files={
                "image": (name, (dataset / "images" / name).read_bytes(), "image/png"),
                "mask": ("mask.png", (dataset / "masks" / name).read_bytes(), "image/png"),
            },
            data={"split": split},
        )
        assert r.status_code == 201, r.text


class ServerProcess:
    """``medloop serve --data-dir DATA --port PORT`` as a child process.

    Args:
        data_dir: the server's data folder (kept across restarts).
        log_path: the child's stdout and stderr go here (appended across restarts).
        env: extra environment variables for the child.
    """

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        env: dict[str, str] | None = None,
        threads: int = 1,
        args: Sequence[str] = (),
    ) -> None:
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.env = child_env(threads, **(env or {}))
        self.args = list(args)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def start(self, timeout: float = 120.0, port: int | None = None) -> ServerProcess:
        """Start the child and wait until ``/healthz`` answers ok."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.port = port or free_port()
        self.starts += 1
        cmd = [
            *medloop_cmd(),
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *self.args,
        ]
        with open(self.log_path, "ab") as log:
            log.write(f"\n--- start {self.starts}: {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"medloop serve exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                r = httpx.get(f"{self.url}/healthz", timeout=2.0)
                if r.status_code == 200 and r.json().get("status") == "ok":
                    return self
            time.sleep(0.1)
        self.kill()
        raise TimeoutError(f"medloop serve not healthy after {timeout} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait for a graceful exit; returns the exit status (-9 if it had to be killed).

        uvicorn shuts down gracefully, then re-raises the signal: a clean stop is ``-15``
        (or ``0``), see :data:`CLEAN_EXITS`.
        """
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc is not None else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def restart(self, timeout: float = 120.0) -> ServerProcess:
        """Stop (if running) and start again on the same data folder."""
        self.stop()
        return self.start(timeout)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
