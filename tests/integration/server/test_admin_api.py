"""Projects, reference data and erasure over HTTP, without a shell: settings with before and
after, archive, a zip of pairs as a job, listing and deleting pairs, the training curve, and
erasure of an image with its rows and blobs."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from medloop.services.export import export_training_set
from medloop.storage import repositories as repo

from .conftest import Server, image_bytes, mask_bytes


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _fresh(seed: int) -> tuple[bytes, bytes]:
    """A 64×64 image no other test uploaded, and its 0/255 mask."""
    rng = np.random.default_rng(1000 + seed)
    yy, xx = np.mgrid[:64, :64]
    cy, cx = rng.integers(16, 48, 2)
    mask = ((yy - cy) ** 2 + (xx - cx) ** 2 <= 64).astype(np.uint8)
    image = np.clip(rng.normal(60, 12, (64, 64)) + mask * 130.0, 0, 255).astype(np.uint8)
    return _png(image), _png(mask * 255)


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _import(server: Server, data: bytes, **form: str) -> dict[str, Any]:
    r = server.client.post(
        "/api/v1/projects/discs/reference/import",
        files={"file": ("data.zip", data, "application/zip")},
        data=form,
        headers=server.h("admin"),
    )
    assert r.status_code == 202, r.text
    job = server.wait_job(r.json()["job"]["id"])
    assert job["state"] == "succeeded", job
    return dict(job["result"])


def _image_count(server: Server) -> int:
    pid = server.runtime.services.projects.find("discs").id
    with server.runtime.db.read() as s:
        return repo.count_images(s, pid)


def _blob(server: Server, key: str) -> Path:
    return server.runtime.blobs.path(key)


def test_settings_change_with_before_and_after(server: Server) -> None:
    c, h = server.client, server.h("admin")
    r = c.patch(
        "/api/v1/projects/discs",
        json={
            "learning": {"steps": 12},
            "labels": [{"value": 1, "name": "disc", "color": "#00ff00"}],
        },
        headers=h,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["learning"]["steps"] == 12 and body["labels"][0]["color"] == "#00ff00"
    assert body["learning"]["replay_size"] == 4  # untouched keys stay
    events = c.get("/api/v1/audit?limit=20", headers=h).json()["items"]
    update = next(e for e in events if e["action"] == "project.update")
    assert update["detail"]["changes"]["learning.steps"] == {"before": 10, "after": 12}
    assert update["detail"]["changes"]["labels"]["after"][0]["color"] == "#00ff00"
    # null puts a field back to its default
    r = c.patch("/api/v1/projects/discs", json={"learning": {"steps": None}}, headers=h)
    assert r.json()["learning"]["steps"] == 300
    c.patch("/api/v1/projects/discs", json={"learning": {"steps": 10}}, headers=h)


def test_bad_settings_changes_are_refused(server: Server) -> None:
    c, h = server.client, server.h("admin")
    before = c.get("/api/v1/projects/discs", headers=h).json()
    cases = [
        ({"learning": {"steps": -1}}, 422, "steps"),
        ({"training": {"budget_s": 1}}, 422, "budget_s"),
        ({"nonsense": 1}, 422, "nonsense"),
        ({"labels": [{"value": 2, "name": "disc", "color": "#ff0000"}]}, 422, "label values"),
        (
            {
                "labels": [
                    {"value": 1, "name": "a", "color": "#ff0000"},
                    {"value": 2, "name": "b", "color": "#00ff00"},
                ]
            },
            409,
            "fixed",
        ),
    ]
    for patch, status, word in cases:
        r = c.patch("/api/v1/projects/discs", json=patch, headers=h)
        assert r.status_code == status, (patch, r.text)
        assert word in r.json()["error"]["message"], r.text
    assert c.get("/api/v1/projects/discs", headers=h).json() == before
    for who in ("annotator", "viewer", "outsider"):
        r = c.patch("/api/v1/projects/discs", json={"finetune_every": 1}, headers=server.h(who))
        assert r.status_code in (403, 404), who


def test_archive_hides_and_freezes_a_project(server: Server) -> None:
    c, h = server.client, server.h("admin")
    assert c.post("/api/v1/projects/other/archive", headers=h).status_code == 200
    names = [p["name"] for p in c.get("/api/v1/projects", headers=h).json()["items"]]
    archived = c.get("/api/v1/projects?archived=true", headers=h).json()["items"]
    assert "other" not in names and [p["name"] for p in archived] == ["other"]
    assert archived[0]["archived_at"] is not None
    assert c.get("/api/v1/projects/other", headers=h).status_code == 200  # still readable
    r = c.post(
        "/api/v1/projects/other/images",
        files={"file": ("a.png", image_bytes(server, 8))},
        headers=h,
    )
    assert r.status_code == 409 and "archived" in r.json()["error"]["message"]
    r = c.patch("/api/v1/projects/other", json={"finetune_every": 2}, headers=h)
    assert r.status_code == 409
    # erasure still reaches an archived project's data
    r = c.post(
        "/api/v1/projects/other/erasures/preview",
        json={"scope": "image", "value": "0" * 32},
        headers=h,
    )
    assert r.status_code == 404 and "image" in r.json()["error"]["message"]
    assert c.post("/api/v1/projects/other/restore", headers=h).json()["archived_at"] is None
    names = [p["name"] for p in c.get("/api/v1/projects", headers=h).json()["items"]]
    assert "other" in names


def _dataset_zip(server: Server, top: str = "") -> bytes:
    """A manifest dataset: 3 good pairs, and one of each kind of bad pair."""
    wide = _png(np.zeros((32, 80), np.uint8))
    rows = ["image,mask,split,group"]
    files: dict[str, bytes] = {}
    for i, split in ((12, "train"), (13, "val"), (14, "test")):
        files[f"{top}images/p{i}.png"], files[f"{top}masks/p{i}.png"] = _fresh(i)
        rows.append(f"images/p{i}.png,masks/p{i}.png,{split},stain-{i % 2}")
    files[f"{top}images/wide.png"] = _fresh(20)[0]
    files[f"{top}masks/wide.png"] = wide
    rows.append("images/wide.png,masks/wide.png,train,")
    files[f"{top}images/lonely.png"] = _fresh(21)[0]
    rows.append("images/lonely.png,masks/missing.png,train,")
    files[f"{top}images/bad-split.png"], files[f"{top}masks/bad-split.png"] = _fresh(22)
    rows.append("images/bad-split.png,masks/bad-split.png,holdout,")
    files[f"{top}images/text.png"] = b"not an image"
    files[f"{top}masks/text.png"] = _fresh(23)[1]
    rows.append("images/text.png,masks/text.png,train,")
    files[f"{top}manifest.csv"] = ("\n".join(rows) + "\n").encode()
    return _zip(files)


def test_a_zip_imports_the_good_pairs_and_lists_the_bad(server: Server) -> None:
    c, h = server.client, server.h("admin")
    images_before = _image_count(server)
    result = _import(server, _dataset_zip(server, top="dataset/"))
    assert (result["pairs"], result["added"], result["failed"]) == (7, 3, 4)
    reasons = {e["key"]: e["reason"] for e in result["errors"]}
    assert "size" in reasons["images/wide.png"] or "80" in reasons["images/wide.png"]
    assert "missing.png" in reasons["images/lonely.png"]
    assert "holdout" in reasons["images/bad-split.png"]
    assert "text.png" in reasons["images/text.png"]
    # nothing half-stored: only the three good images are new
    assert _image_count(server) == images_before + 3
    listed = c.get("/api/v1/projects/discs/reference?group=stain-1", headers=h).json()
    assert listed["total"] == 1 and listed["items"][0]["filename"] == "p13.png"
    assert listed["items"][0]["split"] == "val" and listed["items"][0]["trained_by"] == []
    summary = c.get("/api/v1/projects/discs/reference/summary", headers=h).json()
    assert summary["groups"]["stain-0"] == 2 and summary["splits"]["test"] == 1
    # the same zip again adds nothing; the archive blob is gone afterwards
    again = _import(server, _dataset_zip(server, top="dataset/"))
    assert (again["added"], again["present"]) == (0, 3)
    events = c.get("/api/v1/audit?limit=50", headers=h).json()["items"]
    job_id = next(e for e in events if e["action"] == "reference.import")["resource_id"]
    archive = c.get(f"/api/v1/projects/discs/jobs/{job_id}", headers=h).json()["options"]["archive"]
    assert not _blob(server, archive).exists()


def test_folders_without_splits_get_val_by_hash(server: Server) -> None:
    files = {}
    for i in range(10):
        files[f"images/f{i}.png"], files[f"masks/f{i}.png"] = _fresh(30 + i)
    files["masks/orphan.png"] = _fresh(40)[1]
    result = _import(server, _zip(files), group="folder")
    assert result["failed"] == 1 and "no image" in result["errors"][0]["reason"]
    assert result["splits"] == {"train": 9, "val": 1} and result["added"] == 10
    listed = server.client.get(
        "/api/v1/projects/discs/reference?group=folder&limit=100", headers=server.h("admin")
    ).json()
    assert listed["total"] == 10 and {i["group"] for i in listed["items"]} == {"folder"}


def test_what_is_not_a_dataset_is_refused_and_nothing_queued(server: Server) -> None:
    c, h = server.client, server.h("admin")
    jobs_before = len(c.get("/api/v1/projects/discs/jobs?limit=500", headers=h).json()["items"])
    for data, word in (
        (b"PK\x03\x04 broken", "zip"),
        (_zip({"readme.txt": b"hi"}), "manifest.csv"),
        (_zip({"manifest.csv": b"picture,label\n"}), "image"),
    ):
        r = c.post(
            "/api/v1/projects/discs/reference/import",
            files={"file": ("x.zip", data)},
            headers=h,
        )
        assert r.status_code == 400 and word in r.json()["error"]["message"], r.text
    r = c.post(
        "/api/v1/projects/discs/reference/import",
        files={"file": ("x.zip", _zip({"images/a.png": b"1"}))},
        headers=server.h("annotator"),
    )
    assert r.status_code == 403
    assert (
        len(c.get("/api/v1/projects/discs/jobs?limit=500", headers=h).json()["items"])
        == jobs_before
    )


def test_delete_a_pair_until_a_version_trained_on_it(server: Server) -> None:
    c, h = server.client, server.h("admin")
    r = c.post(
        "/api/v1/projects/discs/reference",
        files={"image": ("del.png", _fresh(50)[0]), "mask": ("m.png", _fresh(50)[1])},
        data={"split": "test", "group": "to-delete"},
        headers=h,
    )
    assert r.status_code == 201 and r.json()["group"] == "to-delete"
    pair = r.json()
    image = c.get(f"/api/v1/projects/discs/images/{pair['image_id']}", headers=h).json()
    assert (
        c.delete(
            f"/api/v1/projects/discs/reference/{pair['id']}", headers=server.h("annotator")
        ).status_code
        == 403
    )
    assert c.delete(f"/api/v1/projects/discs/reference/{pair['id']}", headers=h).status_code == 204
    assert c.get(f"/api/v1/projects/discs/images/{pair['image_id']}", headers=h).status_code == 404
    assert not _blob(server, image["sha256"]).exists()
    trained = c.get("/api/v1/projects/discs/reference?split=train&limit=1", headers=h).json()
    item = trained["items"][0]
    assert item["trained_by"] == ["v0001"]
    r = c.delete(f"/api/v1/projects/discs/reference/{item['id']}", headers=h)
    assert r.status_code == 409 and "erase" in r.json()["error"]["message"]


def test_the_training_curve(server: Server) -> None:
    c, h = server.client, server.h("viewer")
    jobs = c.get("/api/v1/projects/discs/jobs?limit=500", headers=h).json()["items"]
    train = next(j for j in jobs if j["kind"] == "train" and j["state"] == "succeeded")
    curve = c.get(f"/api/v1/projects/discs/jobs/{train['id']}/curve", headers=h).json()
    losses = [p for p in curve["points"] if p["metric"] == "loss"]
    assert len(losses) >= 10 and losses[-1]["step"] == 30
    assert all(np.isfinite(p["value"]) for p in losses)
    assert [p["step"] for p in losses] == sorted(p["step"] for p in losses)
    newer = c.get(
        f"/api/v1/projects/discs/jobs/{train['id']}/curve?after={curve['last']}", headers=h
    ).json()
    assert newer["points"] == [] and newer["last"] == curve["last"]
    other = c.get(f"/api/v1/projects/other/jobs/{train['id']}/curve", headers=server.h("admin"))
    assert other.status_code == 404


def test_erase_an_image_and_all_that_came_from_it(server: Server, tmp_path: Path) -> None:
    c, h = server.client, server.h("admin")
    a = c.post(
        "/api/v1/projects/discs/analyses",
        files={"file": ("patient.png", _png(np.full((64, 64), 99, np.uint8)))},
        headers=server.h("annotator"),
    ).json()
    fix = c.post(
        f"/api/v1/projects/discs/analyses/{a['id']}/corrections",
        files={"file": ("m.png", mask_bytes(server, 2))},
        headers=server.h("annotator"),
    ).json()
    image = c.get(f"/api/v1/projects/discs/images/{a['image_id']}", headers=h).json()
    preview = c.post(
        "/api/v1/projects/discs/erasures/preview",
        json={"scope": "image", "value": a["image_id"]},
        headers=h,
    ).json()
    assert preview["counts"] == {"image": 1, "reference": 0, "analysis": 1, "correction": 1}
    no_reason = c.post(
        "/api/v1/projects/discs/erasures",
        json={"scope": "image", "value": a["image_id"], "reason": ""},
        headers=h,
    )
    assert no_reason.status_code == 422
    r = c.post(
        "/api/v1/projects/discs/erasures",
        json={"scope": "image", "value": a["image_id"], "reason": "consent withdrawn"},
        headers=h,
    )
    assert r.status_code == 202, r.text
    out = r.json()
    assert (
        c.post(f"/api/v1/projects/discs/jobs/{out['job']['id']}/cancel", headers=h).status_code
        == 409
    )
    assert server.wait_job(out["job"]["id"])["state"] == "succeeded"
    for path in (f"images/{a['image_id']}", f"analyses/{a['id']}", f"corrections/{fix['id']}"):
        assert c.get(f"/api/v1/projects/discs/{path}", headers=h).status_code == 404, path
    assert not _blob(server, image["sha256"]).exists()
    queue = c.get("/api/v1/projects/discs/review-queue?limit=500", headers=h).json()["items"]
    assert a["id"] not in {q["analysis"]["id"] for q in queue}
    corrections = c.get("/api/v1/projects/discs/corrections?limit=500", headers=h).json()["items"]
    assert fix["id"] not in {x["id"] for x in corrections}
    report = export_training_set(
        server.runtime.services.images,
        server.runtime.services.projects.find("discs").id,
        tmp_path / "out",
        deidentify=False,
    )
    exported = (tmp_path / "out" / "manifest.csv").read_text()
    assert report.written > 0 and "patient.png" not in exported and a["image_id"] not in exported
    erasure = c.get(f"/api/v1/projects/discs/erasures/{out['erasure']['id']}", headers=h).json()
    assert erasure["state"] == "done" and erasure["counts"]["images"] == 1
    assert erasure["reason"] == "consent withdrawn" and erasure["actor_name"] == "admin"
    events = c.get("/api/v1/audit?limit=100", headers=h).json()["items"]
    made = next(e for e in events if e["action"] == "erasure.create")
    assert made["detail"]["reason"] == "consent withdrawn"
    assert a["image_id"] not in str(made["detail"]) and made["detail"]["value_sha256"]
    again = c.post(
        "/api/v1/projects/discs/erasures/preview",
        json={"scope": "image", "value": a["image_id"]},
        headers=h,
    )
    assert again.status_code == 404


def test_erasing_training_data_marks_the_versions_that_saw_it(server: Server) -> None:
    c, h = server.client, server.h("admin")
    pair = c.get("/api/v1/projects/discs/reference?split=train&limit=1", headers=h).json()["items"][
        0
    ]
    r = c.post(
        "/api/v1/projects/discs/erasures",
        json={"scope": "image", "value": pair["image_id"], "reason": "wrong patient"},
        headers=h,
    )
    assert server.wait_job(r.json()["job"]["id"])["state"] == "succeeded"
    v1 = c.get("/api/v1/projects/discs/models/v0001", headers=h).json()
    assert v1["erased_data"] == 1 and v1["status"] == "production"
    marked = [d for d in v1["lineage"]["data"] if d.get("erased")]
    assert [d["key"] for d in marked] == [pair["id"]] and marked[0]["image_sha256"]
    listed = c.get("/api/v1/projects/discs/models", headers=h).json()["items"]
    assert next(m for m in listed if m["version"] == "v0001")["erased_data"] == 1
