"""``medloop demo --serve``: a server with a demo project built from the bundled sample.

Creates (or reuses) a data folder, an admin user, the ``nuclei-demo`` project with
the sample's fluorescence pairs as reference data, queues the training of version 1
in the background, prints the URL and the admin token, and serves until Ctrl-C.
"""

from __future__ import annotations

from pathlib import Path

from medloop.cli._common import console

__all__ = ["serve_demo"]

DEMO_SETTINGS = {
    "labels": [{"value": 1, "name": "nucleus", "color": "#e6194b"}],
    "image_kind": "microscopy",
    "training": {"steps": 300, "patch_size": [128], "channels": [16, 32, 64, 128], "color": "rgb"},
    "learning": {"steps": 150, "correction_weight": 4.0, "replay_size": 24},
    "finetune_every": 5,
}


def serve_demo(data_dir: Path, host: str, port: int, device: str | None) -> None:
    from medloop.api import create_app
    from medloop.api.serving import run
    from medloop.cli.demo import sample_dataset
    from medloop.domain.jobs import TrainJob
    from medloop.domain.settings import ProjectSettings
    from medloop.errors import NotFoundError
    from medloop.io import load_dataset
    from medloop.runtime import Runtime
    from medloop.settings import Settings

    # a demo: the API documentation is on (a real server needs --docs)
    settings = Settings(data_dir=data_dir, host=host, port=port, device=device, api_docs=True)
    rt = Runtime(settings)
    svc = rt.services
    token = svc.users.new_token("demo-admin", "admin")
    try:
        project = svc.projects.find("nuclei-demo")
        fresh = False
    except NotFoundError:
        project = svc.projects.create("nuclei-demo", ProjectSettings.parse(DEMO_SETTINGS)).project
        fresh = True
    if fresh:
        ds = load_dataset(sample_dataset()).select(group="fluorescence")
        for smp in ds.samples:
            svc.references.add(
                project,
                [smp.image.read_bytes()],
                smp.image.name,
                "image/png",
                [smp.mask.read_bytes()],
                smp.mask.name,
                smp.split or "train",
                None,
                smp.group,
            )
        job = svc.jobs.submit(project, TrainJob())
        console.print(f"queued the training of version 1 (job {job.id}); follow it in the job list")
    url = f"http://{host}:{port}"
    console.print(f"medloop demo server: {url}   (API docs: {url}/docs)")
    console.print(f"admin token (also in MEDLOOP_TOKEN for `medloop remote ...`):\n{token}")
    console.print(
        f"try: MEDLOOP_TOKEN={token} medloop remote jobs --server {url} --project nuclei-demo"
    )
    run(create_app(settings, rt), settings)
