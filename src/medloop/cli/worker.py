"""``medloop worker``: run jobs outside the API processes.

With ``MEDLOOP_BROKER_URL`` (Redis) it is a Celery worker on the given queues; each
worker process claims the job whose id a message carries and runs it (training
workers: one job at a time per device, ``--concurrency 1``, the model loaded in the
worker process itself). Without a broker it polls the jobs table, so ``medloop serve
--no-worker`` plus workers on other machines also works over one PostgreSQL.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from typing import Annotated

import typer

from medloop.cli._common import console, fail, run_guarded
from medloop.cli.server import DataDirOpt, settings_from

__all__ = ["worker"]

log = logging.getLogger(__name__)


def worker(
    queues: Annotated[
        str, typer.Option(help="Celery queues to take jobs from: train, analyze, dicom.")
    ] = "train,analyze,dicom",
    concurrency: Annotated[
        int, typer.Option(min=1, help="Jobs at a time (1: one process, the 'solo' pool).")
    ] = 1,
    data_dir: DataDirOpt = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or auto.")] = None,
    name: Annotated[str | None, typer.Option(help="Worker name (default: the queues).")] = None,
) -> None:
    """Run jobs: a Celery worker when MEDLOOP_BROKER_URL is set, else a worker polling the jobs table."""
    from medloop.jobs.celery_app import worker_argv

    settings = settings_from(data_dir, device=device)
    wanted = [q.strip() for q in queues.split(",") if q.strip()]
    try:
        argv = worker_argv(wanted, concurrency, name or "-".join(wanted))
    except ValueError as err:
        fail(str(err))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not settings.broker_url:
        run_guarded(lambda: _poll_table(settings))
        return
    from medloop.jobs.celery_app import make_celery
    from medloop.runtime import Runtime

    def runner_factory():  # type: ignore[no-untyped-def]
        # Built inside the worker process on its first job: nothing loaded before a fork.
        return Runtime(settings).job_runner()

    app = make_celery(settings.broker_url, runner_factory)
    console.print(
        f"medloop worker {socket.gethostname()}: queues {','.join(wanted)}, concurrency "
        f"{concurrency}, broker {settings.broker_url.rsplit('@', 1)[-1]}"
    )
    app.worker_main(argv)


def _poll_table(settings) -> None:  # type: ignore[no-untyped-def]
    """The embedded job worker and DICOMweb poller in a process of their own."""
    from medloop.runtime import Runtime

    rt = Runtime(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    rt.start(worker=True)
    console.print(f"medloop worker polling the jobs table of {rt.db.describe()}")
    try:
        stop.wait()
    finally:
        rt.stop()
