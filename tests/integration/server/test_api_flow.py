"""The loop over HTTP: upload, analyse, correct, automatic fine-tune, models, audit."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from .conftest import Server, image_bytes, mask_bytes


def test_upload_is_content_addressed(server: Server) -> None:
    c, h = server.client, server.h("annotator")
    first = c.post(
        "/api/v1/projects/discs/images",
        files={"file": ("a.png", image_bytes(server, 8))},
        headers=h,
    )
    again = c.post(
        "/api/v1/projects/discs/images",
        files={"file": ("b.png", image_bytes(server, 8))},
        headers=h,
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["width"] == 64 and first.json()["channels"] == 1
    raw = c.get(f"/api/v1/projects/discs/images/{first.json()['id']}/file", headers=h)
    assert raw.content == image_bytes(server, 8)


def test_analysis_correction_and_automatic_finetune(server: Server) -> None:
    c, h = server.client, server.h("annotator")
    before = {
        m["version"] for m in c.get("/api/v1/projects/discs/models", headers=h).json()["items"]
    }
    job_id = None
    for i in (8, 9, 10):
        a = c.post(
            "/api/v1/projects/discs/analyses",
            files={"file": (f"{i}.png", image_bytes(server, i))},
            headers=h,
        )
        assert a.status_code == 201, a.text
        body = a.json()
        assert body["model_version"] == "v0001" and 0 <= body["uncertainty"] <= 1
        assert body["measurements"][0]["name"] == "disc"
        mask = Image.open(
            io.BytesIO(
                c.get(f"/api/v1/projects/discs/analyses/{body['id']}/mask", headers=h).content
            )
        )
        assert mask.size == (64, 64)
        overlay = Image.open(
            io.BytesIO(
                c.get(f"/api/v1/projects/discs/analyses/{body['id']}/overlay", headers=h).content
            )
        )
        assert overlay.mode == "RGB"
        corr = c.post(
            f"/api/v1/projects/discs/analyses/{body['id']}/corrections",
            files={"file": ("m.png", mask_bytes(server, i))},
            headers=h,
        )
        assert corr.status_code == 201, corr.text
        cj = corr.json()
        assert (
            0 <= cj["dice_vs_prediction"] <= 1
            and cj["author"] == "annotator"
            and cj["model_version"] == "v0001"
        )
        job_id = cj["finetune_job_id"] or job_id
    assert job_id is not None, "the third correction should start a fine-tune (finetune_every=3)"
    job = server.wait_job(job_id)
    assert job["state"] == "succeeded", job
    assert job["result"]["parent"] == "v0001"
    models = c.get("/api/v1/projects/discs/models", headers=h).json()["items"]
    new = [m for m in models if m["version"] not in before]
    assert len(new) == 1
    lineage = new[0]["lineage"]
    assert lineage["parent"] == "v0001"
    assert sum(r["role"] == "correction" for r in lineage["data"]) >= 2
    assert new[0]["report"]["against"] == "v0001"


def test_review_queue_orders_by_uncertainty(server: Server) -> None:
    c, h = server.client, server.h("viewer")
    items = c.get("/api/v1/projects/discs/review-queue", headers=h).json()["items"]
    unc = [it["analysis"]["uncertainty"] for it in items]
    assert unc == sorted(unc, reverse=True)
    assert all(not it["analysis"]["corrected"] for it in items)


def test_promote_rollback_and_audit(server: Server) -> None:
    c, h = server.client, server.h("admin")
    assert c.get("/api/v1/projects", headers={"Authorization": "Bearer wrong"}).status_code == 401
    c.post(
        "/api/v1/projects/discs/models/v0001/promote", headers=h, json={"reason": "checked by hand"}
    ).raise_for_status()
    assert c.get("/api/v1/projects/discs", headers=h).json()["production_version"] == "v0001"
    history = c.get("/api/v1/projects/discs/models/v0001", headers=h).json()["history"]
    assert history[0]["event"] == "created"
    assert any(e.get("reason", "").startswith("promoted by admin") for e in history)
    zipped = c.get("/api/v1/projects/discs/models/v0001/download", headers=h)
    assert zipped.headers["content-type"] == "application/zip" and zipped.content[:2] == b"PK"
    events = c.get("/api/v1/audit?limit=500", headers=h).json()["items"]
    actions = {e["action"] for e in events}
    assert {
        "model.promote",
        "image.create",
        "analysis.create",
        "correction.create",
        "auth.login",
    } <= actions
    assert any(e["outcome"] == "denied" for e in events)


def test_metrics_and_health(server: Server) -> None:
    c = server.client
    assert c.get("/healthz").json()["status"] == "ok"
    text = c.get("/metrics", headers=server.h("admin")).text
    assert "medloop_http_requests_total" in text and "medloop_job_queue_depth" in text
    assert 'medloop_model_production_version{project="discs"' in text
    assert c.get("/metrics", headers=server.h("viewer")).status_code == 403


def test_security_headers(server: Server) -> None:
    r = server.client.get("/healthz")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_relative_data_dir_trains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative --data-dir (as `make demo` uses) still gives training data the engine reads."""
    from medloop.runtime import Runtime
    from medloop.settings import Settings

    from ..conftest import write_disc_dataset
    from .conftest import tiny_settings

    data = write_disc_dataset(tmp_path / "d", n_train=2, n_val=0, n_test=0)
    monkeypatch.chdir(tmp_path)
    rt = Runtime(Settings(data_dir=Path("rel-data")))
    try:
        project = rt.services.projects.create("rel", tiny_settings()).project
        for i in range(2):
            rt.services.references.add(
                project,
                [(data / "images" / f"case ({i}).png").read_bytes()],
                "i.png",
                "",
                [(data / "masks" / f"case ({i}).png").read_bytes()],
                "m.png",
                "train",
                None,
            )
        training = rt.services.learning.learner(project).data
        monkeypatch.chdir("/")
        samples = training.reference()
        assert len(samples) == 2
        assert all(training.load(s).mask.shape == (64, 64) for s in samples)
    finally:
        rt.stop()
