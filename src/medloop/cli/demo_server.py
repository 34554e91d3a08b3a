"""``medloop demo --serve``: a server with a demo project built from the bundled sample.

Creates (or reuses) a data folder, an admin user, the ``nuclei-demo`` project with
the sample's fluorescence pairs as reference data, queues the training of version 1
in the background, prints the URL and the admin token, and serves until Ctrl-C.
"""

from __future__ import annotations

from pathlib import Path

from medloop.cli._common import console

__all__ = ["serve_demo"]

DEMO_LEARNING = {
    "train_steps": 300,
    "patch_size": 128,
    "channels": [16, 32, 64, 128],
    "color": "rgb",
    "steps": 150,
    "correction_weight": 4.0,
    "replay_size": 24,
    "finetune_every": 5,
}


def serve_demo(data_dir: Path, host: str, port: int, device: str | None) -> None:
    import uvicorn

    from medloop.api import create_app
    from medloop.cli.demo import sample_dataset
    from medloop.errors import NotFoundError
    from medloop.io import load_dataset
    from medloop.runtime import Runtime
    from medloop.services.server_data import ingest_image, ingest_reference
    from medloop.settings import Settings
    from medloop.storage import repositories as repo

    settings = Settings(data_dir=data_dir, host=host, port=port, device=device)
    rt = Runtime(settings)
    with rt.session() as s:
        admin = repo.get_user_by_name(s, "demo-admin")
        if admin is None:
            _, token = repo.create_user(s, "demo-admin", "admin", None)
        else:
            token = repo.rotate_token(s, admin.id)
        try:
            project = repo.get_project_by_name(s, "nuclei-demo")
            fresh = False
        except NotFoundError:
            project = repo.create_project(
                s,
                name="nuclei-demo",
                labels=[{"value": 1, "name": "nucleus", "color": "#e6194b"}],
                image_kind="microscopy",
                learning=DEMO_LEARNING,
            )
            fresh = True
    if fresh:
        ds = load_dataset(sample_dataset()).select(group="fluorescence")
        for smp in ds.samples:
            img, _ = ingest_image(
                rt, project.id, [smp.image.read_bytes()], smp.image.name, "image/png", None
            )
            ingest_reference(
                rt, project, img, [smp.mask.read_bytes()], smp.mask.name, smp.split or "train"
            )
        job = rt.queue.enqueue(project.id, "train", {}, coalesce=True)
        console.print(f"queued the training of version 1 (job {job.id}); follow it in the job list")
    url = f"http://{host}:{port}"
    console.print(f"medloop demo server: {url}   (API docs: {url}/docs)")
    console.print(f"admin token (also in MEDLOOP_TOKEN for `medloop remote ...`):\n{token}")
    console.print(
        f"try: MEDLOOP_TOKEN={token} medloop remote jobs --server {url} --project nuclei-demo"
    )
    uvicorn.run(create_app(settings, rt), host=host, port=port, log_level="warning")
