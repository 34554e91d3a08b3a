"""Against a real ``medloop serve`` process: health, the loop over HTTP, start-up refusals, users."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import httpx
from PIL import Image

from .conftest import Live, bearer
from .serverproc import child_env, free_port, medloop_cmd, users_add


def test_health_and_metrics(live: Live) -> None:
    r = httpx.get(f"{live.url}/healthz", timeout=30)
    assert r.status_code == 200
    assert r.json()["status"] == "ok" and r.json()["worker"] is True
    assert httpx.get(f"{live.url}/api/v1/projects", timeout=30).status_code == 401
    with live.client("admin") as c:
        text = c.get("/metrics").text
    assert 'medloop_model_production_version{project="discs"' in text
    assert "medloop_http_requests_total" in text


def test_upload_analyse_correct_over_http(live: Live) -> None:
    from medloop.client import MedloopClient

    with MedloopClient(live.url, token=live.tokens["annotator"], timeout=120) as sdk:
        img = sdk.upload_image(live.project, live.image(8), filename="eight.png")
        again = sdk.upload_image(live.project, live.image(8), filename="again.png")
        assert again.id == img.id and (img.width, img.height) == (64, 64)
        a = sdk.analyze(live.project, image_id=img.id)
        assert a.model_version == "v0001" and 0.0 <= a.uncertainty <= 1.0
        b = sdk.analyze(live.project, file=live.image(9), filename="nine.png")
        assert b.image_id != img.id
        mask = Image.open(io.BytesIO(sdk.analysis_mask(live.project, a.id)))
        assert mask.size == (64, 64)
        assert Image.open(io.BytesIO(sdk.analysis_overlay(live.project, a.id))).mode == "RGB"
        fix = sdk.correct(live.project, a.id, live.mask(8), filename="fix.png")
        assert fix.analysis_id == a.id and fix.author == "annotator"
        assert fix.model_version == "v0001" and 0.0 <= fix.dice_vs_prediction <= 1.0
        assert fix.finetune_job_id is None  # finetune_every is 1000 here
        assert sdk.get_analysis(live.project, a.id).corrected is True
        assert sdk.download_image(live.project, img.id) == live.image(8)
        corrections = sdk.list_corrections(live.project).items
        assert [c.id for c in corrections if c.analysis_id == a.id] == [fix.id]
    with live.client("admin") as c:
        events = c.get("/api/v1/audit", params={"limit": 200}).json()["items"]
    mine = [e for e in events if e["action"] == "correction.create" and e["resource_id"] == fix.id]
    assert len(mine) == 1 and mine[0]["actor_name"] == "annotator"
    assert mine[0]["client_ip"] == "127.0.0.1" and mine[0]["outcome"] == "ok"


def test_refuses_public_address_without_tls(tmp_path: Path) -> None:
    cmd = [*medloop_cmd(), "serve", "--data-dir", str(tmp_path / "srv")]
    out = subprocess.run(
        [*cmd, "--host", "0.0.0.0", "--port", str(free_port())],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
        check=False,
    )
    assert out.returncode != 0
    lines = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert "--behind-proxy" in lines[0] and "--tls-certfile" in lines[0]
    assert not (tmp_path / "srv" / "medloop.db").exists(), "nothing should be created"


def test_users_add_prints_token_and_stores_only_a_hash(live: Live) -> None:
    token = users_add(live.data_dir, "device-7", "viewer", live.project)
    assert re.fullmatch(r"[A-Za-z0-9_\-]{32,}", token), token
    # The running server accepts the token made by another process.
    me = httpx.get(f"{live.url}/api/v1/me", headers=bearer(token), timeout=30).json()
    assert me["name"] == "device-7" and me["role"] == "viewer"
    needle = token.encode()
    for f in live.data_dir.rglob("*"):
        if f.is_file():
            assert needle not in f.read_bytes(), f"the token is stored in clear in {f}"
    assert token not in live.srv.log_tail(10**7)
