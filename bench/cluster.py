"""A medloop cluster on loopback: PostgreSQL, Redis, API replicas and Celery workers.

The topology of ``deploy/compose.yaml`` as local processes, for a user to try
(``make cluster``), for the cluster tests and for ``bench/cluster_load.py``:

- PostgreSQL: a throwaway server (Debian's binaries) in a temporary folder, or a new
  database in a server given by URL;
- Redis (Debian's ``redis-server``) without persistence, so a restart loses its queues;
- ``medloop serve --no-worker`` replicas and ``medloop worker`` processes, all on one
  shared data folder (the blob store) with ``MEDLOOP_BROKER_URL`` and
  ``MEDLOOP_DATABASE_URL`` set.

Everything listens on 127.0.0.1 on free ports, and :meth:`Cluster.stop` ends every
process it started (SIGTERM, then SIGKILL) and removes its folder::

    .venv/bin/python bench/cluster.py --apis 2 --workers train,analyze+dicom
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["Cluster", "Proc", "free_port", "medloop_cmd"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def medloop_cmd() -> list[str]:
    script = Path(sys.executable).with_name("medloop")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", "from medloop.cli import main; main()"]


def _pg_bindir() -> Path | None:
    for d in [os.environ.get("PG_BINDIR", ""), *sorted(Path("/usr/lib/postgresql").glob("*/bin"))]:
        if d and (Path(d) / "initdb").is_file():
            return Path(d)
    return None


@dataclass
class Proc:
    """One child process of the cluster, started in a session of its own."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    log: Path
    port: int | None = None
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> Proc:
        self.starts += 1
        with open(self.log, "ab") as fh:
            fh.write(f"\n--- start {self.starts}: {' '.join(self.cmd)}\n".encode())
            fh.flush()
            self.popen = subprocess.Popen(
                self.cmd, stdout=fh, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a Celery worker's pool children too)."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            if sig == signal.SIGKILL:
                assert self.popen is not None
                self.popen.wait(30)

    def stop(self, timeout: float = 20.0) -> None:
        if not self.alive():
            return
        self.kill(signal.SIGTERM)
        assert self.popen is not None
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def wait_healthy(self, timeout: float = 120.0) -> Proc:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not healthy after {timeout} s:\n{self.tail()}")


@dataclass
class Cluster:
    """The cluster's processes and folders (see the module doc).

    Args:
        root: a folder for the shared data, the databases and the logs.
        postgres_url: use a new database in this server instead of starting one.
        env: extra ``MEDLOOP_*`` settings for every medloop process.
        threads: BLAS/OpenMP threads per medloop process.
    """

    root: Path
    postgres_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    threads: int = 1
    procs: list[Proc] = field(default_factory=list)
    database_url: str = ""
    broker_url: str = ""
    redis: Proc | None = None
    _pg_data: Path | None = None
    _pg_db: str | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "shared"

    # -- services ----------------------------------------------------------------------------
    def start_postgres(self) -> str:
        if self.postgres_url:
            from sqlalchemy import create_engine, text

            self._pg_db = f"cluster_{uuid.uuid4().hex[:10]}"
            engine = create_engine(self.postgres_url, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self._pg_db}"'))
            engine.dispose()
            base = self.postgres_url.rsplit("/", 1)[0]
            self.database_url = f"{base}/{self._pg_db}"
            return self.database_url
        bindir = _pg_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL binaries not found: run `make services`")
        # A folder of its own: as root the server runs as `postgres`, which must reach it.
        pg = Path(tempfile.mkdtemp(prefix="medloop-cluster-pg-"))
        as_pg = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        if as_pg:
            shutil.chown(pg, "postgres")
        initdb = [str(bindir / "initdb"), "-D", str(pg / "data"), "-U", "postgres", "-A", "trust"]
        subprocess.run(
            [*as_pg, *initdb, "-E", "UTF8", "--no-locale"], check=True, capture_output=True
        )
        port = free_port()
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {pg} -c max_connections=200"
        pg_ctl = [str(bindir / "pg_ctl"), "-D", str(pg / "data"), "-l", str(pg / "log")]
        subprocess.run(
            [*as_pg, *pg_ctl, "-w", "-t", "60", "-o", opts, "start"],
            check=True,
            capture_output=True,
        )
        self._pg_data = pg / "data"
        self.database_url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        return self.database_url

    def start_redis(self, port: int | None = None) -> str:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server not found: run `make services`")
        port = port or free_port()
        folder = self.root / "redis"
        folder.mkdir(parents=True, exist_ok=True)
        cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        cmd += ["--appendonly", "no", "--dir", str(folder), "--protected-mode", "yes"]
        self.redis = Proc("redis", cmd, dict(os.environ), self.root / "redis.log", port).start()
        end = time.monotonic() + 30
        while time.monotonic() < end:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                self.broker_url = f"redis://127.0.0.1:{port}/0"
                return self.broker_url
            time.sleep(0.05)
        raise TimeoutError(f"redis-server did not start:\n{self.redis.tail()}")

    def restart_redis(self, down_s: float = 0.0) -> None:
        """Stop Redis (its queues are lost: no persistence) and start it on the same port."""
        assert self.redis is not None and self.redis.port is not None
        self.redis.stop()
        time.sleep(down_s)
        self.start_redis(self.redis.port)

    # -- medloop processes ---------------------------------------------------------------
    def medloop_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDLOOP_")}
        env.update(
            MEDLOOP_DATA_DIR=str(self.data_dir),
            MEDLOOP_DATABASE_URL=self.database_url,
            MEDLOOP_BROKER_URL=self.broker_url,
            MEDLOOP_DEVICE="cpu",
            OMP_NUM_THREADS=str(self.threads),
            MKL_NUM_THREADS=str(self.threads),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.env)
        return env

    def users_add(self, name: str, role: str = "admin") -> str:
        out = subprocess.run(
            [*medloop_cmd(), "users", "add", name, "--role", role],
            capture_output=True,
            text=True,
            env=self.medloop_env(),
            check=False,
            timeout=180,
        )
        if out.returncode != 0:
            raise RuntimeError(f"users add failed: {out.stderr}{out.stdout}")
        return out.stdout.strip().splitlines()[-1].strip()

    def add_api(self, port: int | None = None) -> Proc:
        """Start an API replica (``serve --no-worker``) and wait until it is healthy."""
        n = sum(p.name.startswith("api") for p in self.procs)
        port = port or free_port()
        cmd = [*medloop_cmd(), "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)]
        proc = Proc(f"api{n}", cmd, self.medloop_env(), self.root / f"api{n}.log", port)
        self.procs.append(proc.start())
        return proc.wait_healthy()

    def add_worker(self, queues: str = "train,analyze,dicom", concurrency: int = 1) -> Proc:
        n = sum(p.name.startswith("worker") for p in self.procs)
        cmd = [*medloop_cmd(), "worker", "--queues", queues, "--concurrency", str(concurrency)]
        cmd += ["--name", f"w{n}-{queues.replace(',', '-')}"]
        proc = Proc(f"worker{n}", cmd, self.medloop_env(), self.root / f"worker{n}.log")
        self.procs.append(proc.start())
        self._wait_ready(proc)
        return proc

    def _wait_ready(self, proc: Proc, timeout: float = 120.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
            if " ready." in proc.tail(20000):
                return
            time.sleep(0.2)
        raise TimeoutError(f"{proc.name} not ready after {timeout} s:\n{proc.tail()}")

    def restart(self, proc: Proc) -> Proc:
        proc.stop()
        proc.start()
        if proc.port is not None:
            return proc.wait_healthy()
        self._wait_ready(proc)
        return proc

    def start(self, apis: int = 2, workers: Sequence[str] = ("train,analyze,dicom",) * 2) -> None:
        """PostgreSQL, Redis, one API first (it migrates the schema), then the rest."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.start_postgres()
        self.start_redis()
        for _ in range(apis):
            self.add_api()
        for queues in workers:
            self.add_worker(queues)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        if self.redis is not None:
            self.redis.stop()
        bindir = _pg_bindir()
        if self._pg_data is not None and bindir is not None:
            as_pg = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
            stop = [str(bindir / "pg_ctl"), "-D", str(self._pg_data), "-m", "fast", "stop"]
            subprocess.run([*as_pg, *stop], check=False, capture_output=True)
            shutil.rmtree(self._pg_data.parent, ignore_errors=True)
        if self._pg_db and self.postgres_url:
            from sqlalchemy import create_engine, text

            engine = create_engine(self.postgres_url, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self._pg_db}" WITH (FORCE)'))
            engine.dispose()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Start a medloop cluster on loopback (Ctrl-C ends it)."
    )
    ap.add_argument("--apis", type=int, default=2, help="API replicas")
    ap.add_argument(
        "--workers",
        default="train,analyze+dicom",
        help="workers, comma-separated; each one's queues joined by '+'",
    )
    ap.add_argument("--port", type=int, default=8001, help="first API replica's port")
    ap.add_argument("--keep", action="store_true", help="keep the cluster's folder")
    args = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="medloop-cluster-"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cluster = Cluster(root, threads=1)
    try:
        cluster.root.mkdir(parents=True, exist_ok=True)
        cluster.start_postgres()
        cluster.start_redis()
        apis = [cluster.add_api(args.port + i) for i in range(args.apis)]
        token = cluster.users_add("admin")
        for spec in args.workers.split(","):
            cluster.add_worker(spec.replace("+", ","))
        print(f"PostgreSQL  {cluster.database_url}")
        print(f"Redis       {cluster.broker_url}")
        print(f"blobs       {cluster.data_dir / 'blobs'}")
        for api in apis:
            print(f"API         {api.url}   (log {api.log})")
        for proc in cluster.procs:
            if proc.port is None:
                print(f"worker      {' '.join(proc.cmd[-5:])}   (log {proc.log})")
        print(f"\nexport MEDLOOP_SERVER={apis[0].url} MEDLOOP_TOKEN={token}")
        print("Ctrl-C stops the cluster.", flush=True)
        while all(p.alive() for p in cluster.procs):
            time.sleep(1)
        dead = [p.name for p in cluster.procs if not p.alive()]
        print(f"stopped: {', '.join(dead)} exited", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
