"""``medloop serve`` and ``medloop import``: the server side of the CLI (``medloop users``:
:mod:`medloop.cli.users`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medloop.cli._common import console, fail, run_guarded

DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Server data folder (MEDLOOP_DATA_DIR).")
]


def server_settings(data_dir: Path | None, **kw: object):  # type: ignore[no-untyped-def]
    """The server's settings: ``--data-dir`` and the options given, over the environment."""
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
        bool, typer.Option(help="Allow a non-loopback address without TLS (a proxy ends TLS).")
    ] = False,
    tls_certfile: Annotated[
        Path | None, typer.Option(help="Serve HTTPS with this certificate.")
    ] = None,
    tls_keyfile: Annotated[Path | None, typer.Option(help="... and this key.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or auto.")] = None,
) -> None:
    """Run the server: API, durable job worker and analysis pool in one process."""
    import logging

    import uvicorn

    from medloop.api import create_app

    settings = server_settings(
        data_dir,
        host=host,
        port=port,
        behind_proxy=behind_proxy,
        tls_certfile=tls_certfile,
        tls_keyfile=tls_keyfile,
        device=device,
    )
    if (tls_certfile is None) != (tls_keyfile is None):
        fail("give both --tls-certfile and --tls-keyfile, or neither")
    if not settings.is_loopback and tls_certfile is None and not behind_proxy:
        fail(
            f"refusing to serve patient data on {host} without TLS: pass --tls-certfile/--tls-keyfile, or --behind-proxy if a proxy ends TLS"
        )
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = run_guarded(lambda: create_app(settings))
    console.print(
        f"medloop serving on {'https' if tls_certfile else 'http'}://{host}:{port} (data: {settings.data_dir})"
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        ssl_certfile=str(tls_certfile) if tls_certfile else None,
        ssl_keyfile=str(tls_keyfile) if tls_keyfile else None,
        log_level="warning",
        proxy_headers=behind_proxy,
        forwarded_allow_ips="*" if behind_proxy else None,
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

        rt = Runtime(server_settings(data_dir))
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
