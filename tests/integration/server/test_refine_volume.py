"""Clicks on volumes over HTTP: a tiny click-guided 3D project (``training.interactive``)
on bright blobs (one label, ``blob``: a 60-step network does not learn the reference
data's left/right split); a positive click in a missed blob adds its label there, a
negative one removes it, reset, bad clicks (422, nothing stored), who may, the audit
event, segment, the refined NIfTI, a volume correction's effort, the SDK and the CLI."""

from __future__ import annotations

import base64
import gzip
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy import ndimage

from medloop.api import create_app
from medloop.domain.settings import ProjectSettings
from medloop.runtime import Runtime
from medloop.settings import Settings
from medloop.storage import repositories as repo

from ..conftest import write_volume_dataset
from .conftest import Server, database

P = "/api/v1/projects/clicks3d"


def _settings() -> ProjectSettings:
    return ProjectSettings.parse(
        {
            "labels": [{"value": 1, "name": "blob", "color": "#ff0000"}],
            "image_kind": "mri",
            "spatial_dims": 3,
            "max_frames": 64,
            "training": {
                "steps": 60,
                "channels": [8, 16, 32],
                "batch_size": 2,
                "interactive": True,
            },
            "finetune_every": 0,
        }
    )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def srv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server with ``clicks3d`` (v0001 click-guided 3D) and its admin, annotator, viewer."""
    tmp = tmp_path_factory.mktemp("clicks3d")
    with database(request.param) as url:
        data = write_volume_dataset(tmp / "data", n_train=4, n_val=1, n_test=3)
        for path in (data / "masks").glob("*.nii.gz"):  # both labels as one
            img = nib.Nifti1Image.from_bytes(gzip.decompress(path.read_bytes()))
            one = (np.asarray(img.dataobj) > 0).astype(np.uint8)
            path.write_bytes(gzip.compress(nib.Nifti1Image(one, img.affine).to_bytes()))
        settings = Settings(data_dir=tmp / "srv", database_url=url, auth_failures="100000/minute")
        rt = Runtime(settings)
        rt.services.projects.create("clicks3d", _settings())
        tokens = {}
        for name, role, project in [
            ("admin", "admin", None),
            ("clicker", "annotator", "clicks3d"),
            ("viewer", "viewer", "clicks3d"),
        ]:
            _, tokens[name] = rt.services.users.add(name, role, project)
        with TestClient(create_app(settings, rt)) as client:
            s = Server(client, rt, tokens, "clicks3d", "clicks3d", data)
            for i, split in enumerate(["train"] * 4 + ["val"]):
                files = {
                    "image": (f"case{i}.nii.gz", _file(s, "images", i)),
                    "mask": ("m.nii.gz", _file(s, "masks", i)),
                }
                r = client.post(
                    f"{P}/reference", files=files, data={"split": split}, headers=s.h("admin")
                )
                assert r.status_code == 201, r.text
            job = client.post(f"{P}/jobs", json={"kind": "train"}, headers=s.h("admin")).json()
            end = time.monotonic() + 600
            while (j := client.get(f"{P}/jobs/{job['id']}", headers=s.h("admin")).json())[
                "state"
            ] not in ("succeeded", "failed", "cancelled") and time.monotonic() < end:
                time.sleep(0.2)
            assert j["state"] == "succeeded", j
            yield s


def _file(s: Server, sub: str, i: int) -> bytes:
    return (s.data / sub / f"case{i}.nii.gz").read_bytes()


def _canonical(data: bytes) -> np.ndarray:
    """A NIfTI's array on the canonical RAS+ grid the server's x, y, z index."""
    img = nib.Nifti1Image.from_bytes(gzip.decompress(data))
    return np.asarray(nib.as_closest_canonical(img).dataobj).astype(np.uint8)


def _analysis(s: Server, i: int, labels: np.ndarray | None = None) -> tuple[str, np.ndarray]:
    """An analysis of test volume ``i``; its automatic label volume replaced by ``labels``
    (canonical grid; the analysis recorded as the server records one) when given."""
    r = s.client.post(
        f"{P}/analyses",
        files={"file": (f"c{i}.nii.gz", _file(s, "images", i))},
        headers=s.h("clicker"),
    )
    assert r.status_code == 201, r.text
    a = r.json()
    if labels is None:
        mask = s.client.get(f"{P}/analyses/{a['id']}/mask", headers=s.h("clicker")).content
        return a["id"], _canonical(mask)
    source = nib.as_closest_canonical(
        nib.Nifti1Image.from_bytes(gzip.decompress(_file(s, "images", i)))
    )
    ref = s.runtime.blobs.put_bytes(
        gzip.compress(nib.Nifti1Image(labels, source.affine).to_bytes())
    )
    with s.runtime.db.write() as db:
        repo.claim_blobs(db, s.runtime.blobs.exists, ref.key)
        row = repo.create_analysis(
            db,
            project_id=a["project_id"],
            image_id=a["image_id"],
            model_version=a["model_version"],
            label_blob_key=ref.key,
            label_sha256=ref.sha256,
            uncertainty=0.0,
            measurements=[],
        )
    return row.id, labels


def _centre(mask: np.ndarray) -> dict[str, float]:
    """The voxel of ``mask`` farthest from its border, as a click's x, y, z."""
    dist = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1, 1:-1]
    x, y, z = np.unravel_index(int(dist.argmax()), mask.shape)
    return {"x": float(x), "y": float(y), "z": float(z)}


def _paste(held: np.ndarray, body: dict[str, Any]) -> np.ndarray:
    block = body["changed"]
    if 0 not in block["shape"]:
        raw = np.frombuffer(gzip.decompress(base64.b64decode(block["data"])), np.uint8)
        where = tuple(slice(o, o + n) for o, n in zip(block["offset"], block["shape"], strict=True))
        held[where] = raw.reshape(block["shape"])
    return held


def _counts(s: Server) -> tuple[int, int, int]:
    pid = s.runtime.services.projects.find("clicks3d").id
    with s.runtime.db.read() as db:
        return (
            len(repo.list_corrections(db, pid)),
            len(repo.list_analyses(db, pid, limit=500, offset=0)),
            len(list(s.runtime.blobs.keys())),
        )


def test_clicks_on_a_volume_add_and_remove_a_label_and_reset(srv: Server) -> None:
    c, h = srv.client, srv.h("clicker")
    truth = _canonical(_file(srv, "masks", 5))
    empty = np.zeros_like(truth)
    analysis, _ = _analysis(srv, 5, empty)
    url = f"{P}/analyses/{analysis}/refine"
    before = _counts(srv)
    click = {**_centre(truth == 1), "label": 1, "positive": True}
    r = c.post(url, json={"clicks": [click]}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (
        body["mask_png"] is None and (body["width"], body["height"], body["depth"]) == truth.shape
    )
    held = _paste(empty.copy(), body)
    assert held[int(click["x"]), int(click["y"]), int(click["z"])] == 1
    assert (held[truth == 1] == 1).sum() > 0.3 * (truth == 1).sum()  # the missed blob found
    assert body["changed_pixels"] == int((held != 0).sum()) and body["clicks"] == 1
    assert [d["name"] for d in body["dice_vs_prediction"]] == ["blob"]
    labels = c.get(f"{url}/labels", headers=h)
    assert labels.headers["content-type"] == "application/gzip"
    assert np.array_equal(_canonical(labels.content), held)
    second = c.post(url, json={"clicks": [{"x": 3, "y": 24, "z": 2, "label": 1}]}, headers=h)
    assert second.json()["clicks"] == 2
    after = _paste(held.copy(), second.json())
    again = c.post(url, json={"reset": True}, headers=h).json()
    assert again["clicks"] == 0 and again["changed_pixels"] == 0
    assert not _paste(after, again).any()  # back to the (empty) analysis
    assert _counts(srv) == before  # a refine stores nothing


def test_a_negative_click_removes_a_false_label(srv: Server) -> None:
    c, h = srv.client, srv.h("clicker")
    truth = _canonical(_file(srv, "masks", 7))
    wrong = truth.copy()
    cube = (slice(1, 6), slice(22, 27), slice(0, 4))  # background, away from the blob
    assert not truth[cube].any()
    wrong[cube] = 1
    analysis, _ = _analysis(srv, 7, wrong)
    click = {"x": 3, "y": 24, "z": 2, "label": 1, "positive": False}
    r = c.post(f"{P}/analyses/{analysis}/refine", json={"clicks": [click]}, headers=h)
    assert r.status_code == 200, r.text
    after = _paste(wrong.copy(), r.json())
    assert after[3, 24, 2] == 0 and (after[cube] == 1).sum() < 0.5 * wrong[cube].sum()
    assert r.json()["changed_pixels"] == int((after != wrong).sum()) > 0


def test_segment_a_volume_from_a_click(srv: Server) -> None:
    c, h = srv.client, srv.h("clicker")
    truth = _canonical(_file(srv, "masks", 6))
    img = c.post(f"{P}/images", files={"file": ("v.nii.gz", _file(srv, "images", 6))}, headers=h)
    assert img.status_code == 201, img.text
    click = {**_centre(truth == 1), "label": 1}
    r = c.post(f"{P}/images/{img.json()['id']}/segment", json={"clicks": [click]}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["analysis_id"] is None and body["dice_vs_prediction"] is None
    held = _paste(np.zeros_like(truth), body)
    assert held[int(click["x"]), int(click["y"]), int(click["z"])] == 1


@pytest.mark.parametrize(
    ("click", "message"),
    [
        ({"x": 3, "y": 3, "label": 1}, "needs 3 coordinates"),
        ({"x": 3, "y": 3, "z": 20, "label": 1}, "outside the image"),
        ({"x": 3, "y": -1, "z": 2, "label": 1}, "outside the image"),
        ({"x": 3, "y": 3, "z": 2, "label": 2}, "label 2"),
    ],
)
def test_bad_volume_clicks_answer_422_and_change_nothing(
    srv: Server, click: dict[str, Any], message: str
) -> None:
    c, h = srv.client, srv.h("clicker")
    analysis, _ = _analysis(srv, 7)
    url = f"{P}/analyses/{analysis}/refine"
    assert (
        c.post(url, json={"clicks": [{"x": 5, "y": 5, "z": 5, "label": 1}]}, headers=h).status_code
        == 200
    )
    held = c.get(f"{url}/labels", headers=h).content
    before = _counts(srv)
    r = c.post(url, json={"clicks": [click]}, headers=h)
    assert r.status_code == 422 and message in r.json()["error"]["message"], r.text
    assert _counts(srv) == before and c.get(f"{url}/labels", headers=h).content == held
    assert c.post(url, json={}, headers=h).json()["clicks"] == 1  # left as it was


def test_nan_too_many_and_bad_boxes_answer_422(srv: Server) -> None:
    c, h = srv.client, srv.h("clicker")
    analysis, auto = _analysis(srv, 7)
    url = f"{P}/analyses/{analysis}/refine"
    before = _counts(srv)
    raw = b'{"clicks": [{"x": 1, "y": 3, "z": NaN, "label": 1}]}'
    r = c.post(url, content=raw, headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    many = {"clicks": [{"x": 3, "y": 3, "z": 3, "label": 1}] * 65}
    assert c.post(url, json=many, headers=h).status_code == 422
    for box, message in [([1, 2, 3, 4, 5], "not 5 values"), ([0, 0, 0, 9, 9, 40], "outside")]:
        r = c.post(url, json={"box": box}, headers=h)
        assert r.status_code == 422 and message in r.json()["error"]["message"], r.text
    assert np.array_equal(_canonical(c.get(f"{url}/labels", headers=h).content), auto)
    assert _counts(srv) == before
    ok = c.post(url, json={"box": [4, 4, 4, 12, 12, 12], "box_label": 1}, headers=h)
    assert ok.status_code == 200 and ok.json()["box"] == [4, 4, 4, 12, 12, 12]


def test_viewers_may_not_refine_and_refines_are_audited(srv: Server) -> None:
    c = srv.client
    analysis, _ = _analysis(srv, 5)
    one = {"clicks": [{"x": 4, "y": 4, "z": 4, "label": 1}]}
    url = f"{P}/analyses/{analysis}/refine"
    assert c.post(url, json=one, headers=srv.h("viewer")).status_code == 403
    assert c.get(f"{url}/labels", headers=srv.h("viewer")).status_code == 403
    assert c.post(url, json=one, headers=srv.h("admin")).status_code == 200
    events = c.get("/api/v1/audit?limit=500", headers=srv.h("admin")).json()["items"]
    mine = [e for e in events if e["action"] == "analysis.refine"]
    assert any(
        e["outcome"] == "ok" and e["resource_id"] == analysis and e["detail"]["clicks"] == 1
        for e in mine
    )
    assert any(e["outcome"] == "denied" and e["detail"] == {"needs": "annotator"} for e in mine)


def test_the_sdk_and_the_cli_refine_a_volume_and_correct_it_with_effort(
    srv: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from medloop.cli import remote
    from medloop.client import Click, MedloopClient

    sdk = MedloopClient("", srv.tokens["clicker"], http_client=srv.client)
    truth = _canonical(_file(srv, "masks", 6))
    analysis, auto = _analysis(srv, 6)
    at = _centre(truth == 1)
    r = sdk.refine("clicks3d", analysis, [Click(**at, label=1)])
    assert r.depth == truth.shape[2] and r.changed is not None and r.clicks == 1
    held = r.changed.apply(auto.copy())
    nifti = sdk.refined_labels("clicks3d", analysis)
    assert np.array_equal(_canonical(nifti), held)
    fix = sdk.correct("clicks3d", analysis, nifti, filename="fix.nii.gz", clicks=r.clicks)
    assert fix.effort is not None and fix.effort.clicks == 1

    monkeypatch.setattr(remote, "_client", lambda server, token: sdk)
    monkeypatch.setattr(sdk, "close", lambda: None)
    out = tmp_path / "refined.nii.gz"
    x, y, z = (int(at[k]) for k in "xyz")
    args = ["refine", analysis, "-p", "clicks3d", "--click", f"{x},{y},{z},1,-", "-o", str(out)]
    run = CliRunner().invoke(remote.remote_app, args, env={"MEDLOOP_TOKEN": "t", "COLUMNS": "250"})
    assert run.exit_code == 0, run.output
    assert "2 clicks so far" in run.output and "voxels changed" in run.output
    assert _canonical(out.read_bytes()).shape == truth.shape
