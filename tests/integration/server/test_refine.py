"""Correcting with clicks over HTTP: refine an analysis, segment an image, who may, what is
audited, bad clicks, a version without clicks, and the effort record of a correction.

A second project, ``clicks``, is trained click-guided (``training.interactive``) on
faint discs, which the automatic model finds poorly and a click finds well.
"""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from medloop.domain.settings import ProjectSettings
from medloop.ml.onnx_runtime import onnx_available
from medloop.storage import repositories as repo

from .conftest import Server, image_bytes, mask_bytes

P = "/api/v1/projects/clicks"
YY, XX = np.mgrid[:64, :64]
CENTRES = [(16, 16), (20, 46), (46, 30)]


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _faint(seed: int, centres: list[tuple[int, int]] | None = None) -> tuple[bytes, np.ndarray]:
    """A 64x64 image of faint discs (+30 over noise of 12) and its 0/255 mask."""
    rng = np.random.default_rng(seed)
    if centres is None:
        centres = [(int(a), int(b)) for a, b in rng.integers(8, 56, (3, 2))]
    mask = np.zeros((64, 64), np.uint8)
    for cy, cx in centres:
        mask[(YY - cy) ** 2 + (XX - cx) ** 2 <= 36] = 1
    img = np.clip(rng.normal(60, 12, (64, 64)) + mask * 30.0, 0, 255).astype(np.uint8)
    return _png(img), mask


def _wait(srv: Server, job: str, timeout: float = 300) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        j = srv.client.get(f"{P}/jobs/{job}", headers=srv.h("admin")).json()
        if j["state"] in ("succeeded", "failed", "cancelled"):
            return j
        time.sleep(0.2)
    raise TimeoutError(job)


@pytest.fixture(scope="module")
def clicks(server: Server) -> Server:
    """``server`` with the ``clicks`` project (v0001 click-guided) and its annotator."""
    rt, c = server.runtime, server.client
    settings = {
        "labels": [{"value": 1, "name": "disc", "color": "#ff0000"}],
        "training": {
            "steps": 120,
            "patch_size": [32],
            "channels": [8, 16, 32],
            "interactive": True,
        },
        "finetune_every": 0,
    }
    rt.services.projects.create("clicks", ProjectSettings.parse(settings))
    _, server.tokens["clicker"] = rt.services.users.add("clicker", "annotator", "clicks")
    for i, split in enumerate(["train"] * 8 + ["val"] * 2):
        image, mask = _faint(100 + i)
        r = c.post(
            f"{P}/reference",
            files={"image": (f"f{i}.png", image), "mask": ("m.png", _png(mask * 255))},
            data={"split": split},
            headers=server.h("admin"),
        )
        assert r.status_code == 201, r.text
    job = c.post(f"{P}/jobs", json={"kind": "train"}, headers=server.h("admin")).json()
    assert _wait(server, job["id"])["state"] == "succeeded"
    return server


def _analyse(srv: Server, image: bytes, who: str = "clicker", project: str = P) -> dict[str, Any]:
    r = srv.client.post(
        f"{project}/analyses", files={"file": ("scan.png", image)}, headers=srv.h(who)
    )
    assert r.status_code == 201, r.text
    return r.json()


def _labels(body: dict[str, Any]) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(body["mask_png"]))))


def _rows(srv: Server) -> tuple[int, int, int]:
    """Corrections and analyses of ``clicks``, and stored blobs."""
    project = srv.runtime.services.projects.find("clicks").id
    with srv.runtime.db.read() as s:
        return (
            len(repo.list_corrections(s, project)),
            len(repo.list_analyses(s, project, limit=500, offset=0)),
            sum(1 for f in srv.runtime.blobs.root.rglob("*") if f.is_file()),
        )


def _missed(srv: Server, image: bytes) -> tuple[str, np.ndarray]:
    """An analysis of ``image`` whose automatic label map is empty (every object missed),
    recorded as the server records one, and that label map."""
    a = _analyse(srv, image)
    empty = np.zeros((64, 64), np.uint8)
    ref = srv.runtime.blobs.put_bytes(_png(empty))
    with srv.runtime.db.write() as s:
        repo.claim_blobs(s, srv.runtime.blobs.exists, ref.key)
        missed = repo.create_analysis(
            s,
            project_id=a["project_id"],
            image_id=a["image_id"],
            model_version=a["model_version"],
            label_blob_key=ref.key,
            label_sha256=ref.sha256,
            uncertainty=0.0,
            measurements=[],
        )
    return missed.id, empty


def test_a_positive_click_in_an_empty_region_adds_the_object(clicks: Server) -> None:
    c, h = clicks.client, clicks.h("clicker")
    image, _ = _faint(7, CENTRES)
    analysis, auto = _missed(clicks, image)
    (cy, cx), disc = CENTRES[1], (YY - 20) ** 2 + (XX - 46) ** 2 <= 36
    rows = _rows(clicks)
    r = c.post(
        f"{P}/analyses/{analysis}/refine",
        json={"clicks": [{"x": cx, "y": cy, "label": 1, "positive": True}]},
        headers=h,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    refined = _labels(body)
    assert refined.shape == (64, 64) and (body["width"], body["height"]) == (64, 64)
    assert body["model_version"] == "v0001" and body["clicks"] == 1
    if onnx_available():  # on a CPU the pool serves the version with ONNX Runtime: so is refine
        pid = clicks.runtime.services.projects.find("clicks").id
        assert clicks.runtime.pool.resolve(pid, "v0001")[1].runtime == "onnxruntime"
    assert refined[cy, cx] == 1 and refined[disc].mean() > 0.5
    assert body["changed_pixels"] == int((refined != auto).sum()) > 0
    dice = body["dice_vs_prediction"]
    assert [d["name"] for d in dice] == ["disc"] and 0 <= dice[0]["dice"] < 1
    # clicks accumulate; reset starts over from the analysis
    neg = {"x": 2, "y": 62, "label": 1, "positive": False}
    url = f"{P}/analyses/{analysis}/refine"
    assert c.post(url, json={"clicks": [neg]}, headers=h).json()["clicks"] == 2
    again = c.post(url, json={"reset": True}, headers=h).json()
    assert again["clicks"] == 0 and (_labels(again) == auto).all()
    assert _rows(clicks) == rows  # a refine stores nothing


def test_segment_an_image_from_a_box(clicks: Server) -> None:
    c, h = clicks.client, clicks.h("clicker")
    image, _ = _faint(8, CENTRES)
    img = c.post(f"{P}/images", files={"file": ("s.png", image)}, headers=h).json()
    cy, cx = CENTRES[0]
    r = c.post(
        f"{P}/images/{img['id']}/segment",
        json={"clicks": [{"x": cx, "y": cy, "label": 1}], "box": [cx - 7, cy - 7, cx + 7, cy + 7]},
        headers=h,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["analysis_id"] is None and body["dice_vs_prediction"] is None
    assert body["box"] == [cx - 7, cy - 7, cx + 7, cy + 7] and body["clicks"] == 1
    assert _labels(body)[cy, cx] == 1


def test_who_may_refine_and_the_audit_trail(clicks: Server) -> None:
    c = clicks.client
    a = _analyse(clicks, image_bytes(clicks, 9), "annotator", "/api/v1/projects/discs")
    one = {"clicks": [{"x": 10, "y": 10, "label": 1}]}
    path = f"/analyses/{a['id']}/refine"
    r = c.post(f"/api/v1/projects/discs{path}", json=one, headers=clicks.h("viewer"))
    assert r.status_code == 403, r.text
    for who, project in [("outsider", "discs"), ("outsider", "other"), ("clicker", "discs")]:
        r = c.post(f"/api/v1/projects/{project}{path}", json=one, headers=clicks.h(who))
        assert r.status_code == 404, (who, project, r.text)
    b = _analyse(clicks, _faint(9, CENTRES)[0])
    r = c.post(f"{P}/analyses/{b['id']}/refine", json=one, headers=clicks.h("admin"))
    assert r.status_code == 200, r.text
    events = c.get("/api/v1/audit?limit=500", headers=clicks.h("admin")).json()["items"]
    mine = [e for e in events if e["action"] == "analysis.refine"]
    assert any(
        e["outcome"] == "ok" and e["resource_id"] == b["id"] and e["detail"]["clicks"] == 1
        for e in mine
    )
    assert any(e["outcome"] == "denied" for e in mine)


def test_a_version_without_clicks_answers_409(clicks: Server) -> None:
    c, h = clicks.client, clicks.h("annotator")
    a = _analyse(clicks, image_bytes(clicks, 10), "annotator", "/api/v1/projects/discs")
    r = c.post(
        f"/api/v1/projects/discs/analyses/{a['id']}/refine",
        json={"clicks": [{"x": 10, "y": 10, "label": 1}]},
        headers=h,
    )
    assert r.status_code == 409, r.text
    assert "train with training.interactive=true" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"clicks": [{"x": 64, "y": 3, "label": 1}]}, "outside the image"),
        ({"clicks": [{"x": -1, "y": 3, "label": 1}]}, "outside the image"),
        ({"clicks": [{"x": 3, "y": 3, "label": 2}]}, "label 2"),
        ({"clicks": [{"x": 3, "y": 3, "z": 1, "label": 1}]}, "2 coordinates"),
        ({"clicks": [{"x": 3, "y": 3, "label": 1}] * 65}, "65"),
        ({"clicks": [{"x": "3", "y": 3, "label": 1}]}, "clicks.0.x"),
        ({"clicks": [{"x": 3, "y": 3, "label": 1, "positive": "yes"}]}, "positive"),
        ({"clicks": [{"x": 3, "y": 3, "label": 1, "colour": 1}]}, "colour"),
        ({"box": [1, 2, 3]}, "box"),
    ],
)
def test_bad_clicks_answer_422_and_store_nothing(
    clicks: Server, body: dict[str, Any], message: str
) -> None:
    c, h = clicks.client, clicks.h("clicker")
    a = _analyse(clicks, _faint(11, CENTRES)[0])
    rows = _rows(clicks)
    r = c.post(f"{P}/analyses/{a['id']}/refine", json=body, headers=h)
    assert r.status_code == 422, r.text
    assert message in r.json()["error"]["message"], r.text
    assert _rows(clicks) == rows


def test_nan_and_too_many_accumulated_clicks_answer_422(clicks: Server) -> None:
    c, h = clicks.client, clicks.h("clicker")
    a = _analyse(clicks, _faint(12, CENTRES)[0])
    url = f"{P}/analyses/{a['id']}/refine"
    raw = b'{"clicks": [{"x": NaN, "y": 3, "label": 1}]}'
    r = c.post(url, content=raw, headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    forty = {"clicks": [{"x": 3, "y": 3, "label": 1}] * 40}
    assert c.post(url, json=forty, headers=h).status_code == 200
    r = c.post(url, json=forty, headers=h)
    assert r.status_code == 422 and "at most 64" in r.json()["error"]["message"]
    assert c.post(url, json={}, headers=h).json()["clicks"] == 40  # left as it was


def test_a_correction_stores_its_effort_record(clicks: Server, tmp_path: Path) -> None:
    c, h = clicks.client, clicks.h("annotator")
    a = _analyse(clicks, image_bytes(clicks, 11), "annotator", "/api/v1/projects/discs")
    url = f"/api/v1/projects/discs/analyses/{a['id']}/corrections"
    mask = ("m.png", mask_bytes(clicks, 11))
    bad = c.post(url, files={"file": mask}, data={"clicks": "-1"}, headers=h)
    assert bad.status_code == 422, bad.text
    r = c.post(
        url,
        files={"file": mask},
        data={"clicks": "4", "brush_strokes": "2", "active_seconds": "31.5"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["effort"] == {
        "clicks": 4,
        "brush_strokes": 2,
        "active_seconds": 31.5,
        "dice_vs_prediction": body["dice_vs_prediction"],
    }
    assert 0 <= body["dice_vs_prediction"] <= 1
    stored = c.get(f"/api/v1/projects/discs/corrections/{body['id']}", headers=h).json()
    assert stored["effort"] == body["effort"]
    plain = c.post(url, files={"file": mask}, headers=h).json()
    assert plain["effort"] is None


def test_the_sdk_and_the_cli_refine(
    clicks: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from medloop.cli import remote
    from medloop.client import Click, Conflict, MedloopClient

    sdk = MedloopClient("", clicks.tokens["clicker"], http_client=clicks.client)
    image, _ = _faint(13, CENTRES)
    analysis, _ = _missed(clicks, image)
    cy, cx = CENTRES[2]
    r = sdk.refine("clicks", analysis, [Click(x=cx, y=cy, label=1)])
    assert r.clicks == 1 and r.mask[:4] == b"\x89PNG" and r.dice_vs_prediction is not None
    r = sdk.refine("clicks", analysis, [{"x": 1, "y": 1, "label": 1, "positive": False}])
    assert r.clicks == 2
    img = sdk.upload_image("clicks", image, filename="s.png")
    seg = sdk.segment("clicks", img.id, box=[cx - 7, cy - 7, cx + 7, cy + 7])
    assert seg.box == [cx - 7, cy - 7, cx + 7, cy + 7] and seg.clicks == 0
    fix = sdk.correct("clicks", analysis, r.mask, clicks=r.clicks, active_seconds=12.0)
    assert fix.effort is not None and (fix.effort.clicks, fix.effort.brush_strokes) == (2, None)
    discs = MedloopClient("", clicks.tokens["annotator"], http_client=clicks.client)
    plain = discs.analyze("discs", file=image_bytes(clicks, 8))
    with pytest.raises(Conflict, match="interactive"):
        discs.refine("discs", plain.id, [Click(x=3, y=3, label=1)])

    monkeypatch.setattr(remote, "_client", lambda server, token: sdk)
    monkeypatch.setattr(sdk, "close", lambda: None)
    out = tmp_path / "refined.png"
    run = CliRunner().invoke(
        remote.remote_app,
        ["refine", analysis, "-p", "clicks", "--click", f"{cx},{cy},1", "--reset", "-o", str(out)],
        env={"MEDLOOP_TOKEN": "t", "COLUMNS": "250"},
    )
    assert run.exit_code == 0, run.output
    assert "1 clicks so far (model v0001)" in run.output and out.read_bytes()[:4] == b"\x89PNG"
    run = CliRunner().invoke(
        remote.remote_app,
        ["refine", analysis, "-p", "clicks", "--click", "99,3,1"],
        env={"MEDLOOP_TOKEN": "t", "COLUMNS": "250"},
    )
    assert run.exit_code == 2 and "outside the image" in run.output
