"""``medloop serve`` and ``medloop import``: the server side of the CLI (``medloop users``:
:mod:`medloop.cli.users`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from medloop.cli._common import console, fail, run_guarded

if TYPE_CHECKING:
    from medloop.settings import Settings

DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Server data folder (MEDLOOP_DATA_DIR).")
]


def settings_from(data_dir: Path | None, **kw: object) -> Settings:
    """Settings from the environment, with the options given on the command line."""
    from medloop.settings import Settings

    values = {k: v for k, v in kw.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return Settings(**values)  # type: ignore[arg-type]


def serve(
    data_dir: DataDirOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    behind_proxy: Annotated[
        str | None,
        typer.Option(
            help="Addresses or networks of the reverse proxies that end TLS, comma-separated "
            "(10.0.0.5,10.0.1.0/24): only their X-Forwarded-For is believed, and a "
            "non-loopback --host is allowed without TLS (MEDLOOP_TRUSTED_PROXIES)."
        ),
    ] = None,
    tls_certfile: Annotated[
        Path | None, typer.Option(help="Serve HTTPS with this certificate.")
    ] = None,
    tls_keyfile: Annotated[Path | None, typer.Option(help="... and this key.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or auto.")] = None,
    dicomweb_host: Annotated[
        list[str] | None,
        typer.Option(
            help="A DICOMweb server projects may connect to: host or host:port (repeat for "
            "more; '*' for any). None by default (MEDLOOP_DICOMWEB_HOSTS, comma-separated)."
        ),
    ] = None,
    docs: Annotated[
        bool | None,
        typer.Option(
            "--docs/--no-docs",
            help="Serve the API documentation at /docs and /openapi.json (MEDLOOP_API_DOCS).",
        ),
    ] = None,
    header_timeout: Annotated[
        float | None,
        typer.Option(help="Seconds a request's head may take to arrive (default 10)."),
    ] = None,
    body_timeout: Annotated[
        float | None,
        typer.Option(help="Seconds a request body may stall before 408 (default 30)."),
    ] = None,
    worker: Annotated[
        bool | None,
        typer.Option(
            "--worker/--no-worker",
            help="Run the job worker in this process (default; MEDLOOP_WORKER_ENABLED). "
            "--no-worker: an API replica; jobs run in `medloop worker` processes.",
        ),
    ] = None,
) -> None:
    """Run the server: API, durable job worker and analysis pool in one process.

    With MEDLOOP_BROKER_URL set, jobs go to Celery workers (`medloop worker`) and this
    process is an API replica that dispatches them."""
    import logging

    from medloop.api import create_app
    from medloop.api.serving import run

    settings = run_guarded(
        lambda: settings_from(
            data_dir,
            host=host,
            port=port,
            trusted_proxies=behind_proxy,
            tls_certfile=tls_certfile,
            tls_keyfile=tls_keyfile,
            device=device,
            dicomweb_hosts=dicomweb_host or None,
            api_docs=docs,
            header_timeout_s=header_timeout,
            body_timeout_s=body_timeout,
            worker_enabled=worker,
        )
    )
    _check_transport(settings, tls_certfile, tls_keyfile)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = run_guarded(lambda: create_app(settings))
    mode = "jobs to Celery workers" if settings.broker_url else "jobs in this process"
    if not settings.broker_url and not settings.worker_enabled:
        mode = "jobs to `medloop worker`"
    console.print(
        f"medloop serving on {'https' if tls_certfile else 'http'}://{host}:{port} (data: {settings.data_dir}; {mode})"
    )
    run(app, settings)


def _check_transport(settings: Settings, certfile: Path | None, keyfile: Path | None) -> None:
    """Exit unless TLS is given whole, and given (or a proxy ends it) off loopback."""
    if (certfile is None) != (keyfile is None):
        fail("give both --tls-certfile and --tls-keyfile, or neither")
    if not settings.is_loopback and certfile is None and not settings.behind_proxy:
        fail(
            f"refusing to serve patient data on {settings.host} without TLS: pass --tls-certfile/--tls-keyfile, or --behind-proxy PROXY_ADDRESSES if a proxy ends TLS"
        )


def import_data(
    data: Annotated[
        Path, typer.Argument(help="Dataset folder or manifest (images/ + masks/, or manifest.csv).")
    ],
    project: Annotated[str, typer.Option(help="Project id or name.")],
    data_dir: DataDirOpt = None,
) -> None:
    """Add a dataset's pairs to a project's reference data (its splits kept; test stays locked)."""

    def go() -> int:
        from medloop.io import load_dataset
        from medloop.runtime import Runtime

        rt = Runtime(settings_from(data_dir))
        try:
            ds = load_dataset(data)
            proj = rt.services.projects.find(project)
            for smp in ds.samples:
                with open(smp.image, "rb") as fi, open(smp.mask, "rb") as fm:
                    rt.services.references.add(
                        proj,
                        iter(lambda: fi.read(1 << 20), b""),
                        smp.image.name,
                        "",
                        iter(lambda: fm.read(1 << 20), b""),
                        smp.mask.name,
                        smp.split or "train",
                        None,
                        smp.group,
                    )
            return len(ds.samples)
        finally:
            rt.stop()

    if not data.exists():
        fail(f"dataset {data} does not exist")
    n = run_guarded(go)
    console.print(f"imported {n} reference pairs into {project}")


secrets_app = typer.Typer(
    help="The server key that encrypts stored secrets (PACS credentials, de-identification keys).",
    no_args_is_help=True,
)


@secrets_app.command("rotate")
def rotate_secrets(data_dir: DataDirOpt = None) -> None:
    """Encrypt every stored secret with a new key and retire the old one.

    With the key file (<data-dir>/secret.key) the new key replaces the old one there; with
    MEDLOOP_SECRET_KEY=NEW,OLD everything is encrypted with NEW, and OLD can then be removed.
    """

    def go() -> str:
        from medloop.runtime import Runtime

        rt = Runtime(settings_from(data_dir))
        try:
            done = rt.services.secrets.rotate()
        finally:
            rt.stop()
        if done.keys_left > 1:
            return (
                f"secrets of {done.projects} project(s) encrypted with the first key of "
                f"{done.where}; now remove the other keys from it"
            )
        return f"secrets of {done.projects} project(s) encrypted with a new key in {done.where}"

    console.print(run_guarded(go), highlight=False)


@secrets_app.command("new-key")
def new_secret_key() -> None:
    """Print a new random key (for MEDLOOP_SECRET_KEY)."""
    from medloop.storage.secret_keys import new_key

    typer.echo(new_key())
