"""Each bad input answers 4xx with a message naming the problem, and stores nothing."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from .conftest import Server, image_bytes, mask_bytes


def _count_images(srv: Server) -> int:
    from medloop.storage import repositories as repo

    with srv.runtime.db.write() as s:
        return repo.count_images(s, repo.get_project_by_name(s, "discs").id)


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _bomb() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "payload", "status", "needle"),
    [
        ("notes.png", b"hello, I am not an image", 400, "not a supported image"),
        ("empty.png", b"", 400, ""),
        ("half.png", None, 400, ""),  # truncated PNG, filled below
        ("bomb.png", None, 400, "20000"),
        (
            "lying.dcm",
            None,
            201,
            "",
        ),  # a PNG sent as DICOM with a DICOM content type: read by content
    ],
)
def test_bad_images(
    server: Server, name: str, payload: bytes | None, status: int, needle: str
) -> None:
    if name == "half.png":
        payload = image_bytes(server, 11)[:200]
    elif name == "bomb.png":
        payload = _bomb()
    elif name == "lying.dcm":
        payload = image_bytes(server, 11)
    before = _count_images(server)
    r = server.client.post(
        "/api/v1/projects/discs/images",
        files={"file": (name, payload, "application/dicom")},
        headers=server.h("annotator"),
    )
    assert r.status_code in ((200, 201) if status == 201 else (status,)), r.text
    if status >= 400:
        err = r.json()["error"]
        assert needle in err["message"]
        assert _count_images(server) == before
        events = server.client.get("/api/v1/audit?limit=1", headers=server.h("admin")).json()[
            "items"
        ]
        assert events[0]["action"] == "image.create" and events[0]["outcome"] == "error"


def test_upload_over_the_limit_is_413(server: Server) -> None:
    big = b"\x89PNG" + b"\0" * (3 * 1024 * 1024)
    r = server.client.post(
        "/api/v1/projects/discs/images",
        files={"file": ("big.png", big)},
        headers=server.h("annotator"),
    )
    assert r.status_code == 413
    assert "limit" in r.json()["error"]["message"]


def test_file_names_are_sanitised(server: Server) -> None:
    for name in (
        "../../etc/passwd.png",
        "a\x00b.png",
        "na\udcffme.png".encode("utf-8", "surrogateescape").decode("latin-1"),
    ):
        r = server.client.post(
            "/api/v1/projects/discs/images",
            files={"file": (name, image_bytes(server, 10))},
            headers=server.h("annotator"),
        )
        assert r.status_code in (200, 201), r.text
        stored = r.json()["filename"]
        assert "/" not in stored and "\x00" not in stored and ".." not in stored


def _analysis(server: Server, i: int) -> str:
    r = server.client.post(
        "/api/v1/projects/discs/analyses",
        files={"file": ("x.png", image_bytes(server, i))},
        headers=server.h("annotator"),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_bad_masks(server: Server) -> None:
    a = _analysis(server, 9)
    url = f"/api/v1/projects/discs/analyses/{a}/corrections"
    h = server.h("annotator")
    wrong_size = server.client.post(
        url, files={"file": ("m.png", _png(np.zeros((10, 12), np.uint8)))}, headers=h
    )
    assert wrong_size.status_code == 400 and "12x10" in wrong_size.json()["error"][
        "message"
    ].replace(" ", "")
    bad_labels = server.client.post(
        url, files={"file": ("m.png", _png(np.full((64, 64), 7, np.uint8)))}, headers=h
    )
    assert bad_labels.status_code == 400 and "7" in bad_labels.json()["error"]["message"]
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[..., 0] = 255
    bad_mode = server.client.post(url, files={"file": ("m.png", _png(rgb))}, headers=h)
    assert bad_mode.status_code == 400
    not_png = server.client.post(url, files={"file": ("m.png", b"garbage")}, headers=h)
    assert not_png.status_code == 400
    listed = server.client.get("/api/v1/projects/discs/corrections", headers=h).json()["items"]
    assert all(c["analysis_id"] != a for c in listed)


def test_unknown_ids_and_invalid_json(server: Server) -> None:
    c, h = server.client, server.h("annotator")
    assert c.get("/api/v1/projects/discs/analyses/nope", headers=h).status_code == 404
    assert c.get("/api/v1/projects/nope", headers=h).status_code == 404
    assert (
        c.post("/api/v1/projects/discs/analyses", json={"image_id": "nope"}, headers=h).status_code
        == 404
    )
    r = c.post(
        "/api/v1/projects/discs/analyses",
        content=b"{not json",
        headers={**h, "content-type": "application/json"},
    )
    assert r.status_code == 422
    r = c.post("/api/v1/projects/discs/analyses", json={"image_id": 5, "extra": 1}, headers=h)
    assert r.status_code == 422
    r = c.post("/api/v1/projects", json={"name": "x"}, headers=server.h("admin"))
    assert r.status_code == 422 and "labels" in r.json()["error"]["message"]


def test_correction_on_another_projects_analysis_is_404(server: Server) -> None:
    a = _analysis(server, 11)
    r = server.client.post(
        f"/api/v1/projects/other/analyses/{a}/corrections",
        files={"file": ("m.png", mask_bytes(server, 11))},
        headers=server.h("admin"),
    )
    assert r.status_code == 404


@pytest.mark.parametrize(
    "options", [{"steps": -5}, {"patch_size": 100000}, {"channels": [8]}, {"steps": "many"}]
)
def test_bad_job_options_are_422_and_nothing_is_queued(server: Server, options: dict) -> None:
    h = server.h("admin")
    before = server.client.get("/api/v1/projects/discs/jobs", headers=h).json()["total"]
    r = server.client.post(
        "/api/v1/projects/discs/jobs", json={"kind": "train", "options": options}, headers=h
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_request"
    assert server.client.get("/api/v1/projects/discs/jobs", headers=h).json()["total"] == before
