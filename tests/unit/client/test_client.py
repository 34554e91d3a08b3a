"""MedloopClient against a mock transport: paths, methods, headers, bodies, parsing."""

from __future__ import annotations

import io
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from medloop.client import (
    AnalysisOut,
    Health,
    ImageOut,
    InvalidArgument,
    Label,
    Learning,
    MedloopClient,
    NotFound,
    Page,
    ProjectOut,
    Training,
    TransportError,
)

from .conftest import (
    BASE,
    PNG,
    TOKEN,
    Server,
    analysis,
    audit_event,
    body,
    correction,
    image,
    job,
    model_version,
    multipart,
    page,
    project,
)

P = "/api/v1/projects/retina"


def test_health_sends_no_token_and_keeps_extra_fields(
    client: MedloopClient, server: Server
) -> None:
    server.on("GET", "/healthz", json_body={"status": "ok", "version": "0.1.0"})
    h = client.health()
    assert isinstance(h, Health)
    assert h.status == "ok"
    assert h.model_extra == {"version": "0.1.0"}
    assert "authorization" not in server.last.headers
    assert str(server.last.url) == f"{BASE}/healthz"


def test_me_sends_bearer_token(client: MedloopClient, server: Server) -> None:
    server.on(
        "GET",
        "/api/v1/me",
        json_body={"id": "u1", "name": "cam", "role": "annotator", "project_id": "p1"},
    )
    me = client.me()
    assert (me.name, me.role, me.project_id) == ("cam", "annotator", "p1")
    assert server.last.headers["authorization"] == f"Bearer {TOKEN}"
    assert server.last.headers["accept"] == "application/json"
    assert server.last.method == "GET"


def test_own_http_client_sets_user_agent_and_verifies_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    server = Server()
    server.on(
        "GET",
        "/api/v1/me",
        json_body={"id": "u1", "name": "cam", "role": "viewer", "project_id": None},
    )
    seen: dict[str, object] = {}
    real = httpx.Client

    def fake_client(**kw: object) -> httpx.Client:
        seen.update(kw)
        return real(transport=httpx.MockTransport(server), headers=kw["headers"])  # type: ignore[arg-type]

    monkeypatch.setattr(httpx, "Client", fake_client)
    with MedloopClient(BASE + "/", TOKEN) as c:
        assert c.base_url == BASE
        c.me()
    assert seen["verify"] is True
    assert seen["follow_redirects"] is False
    assert server.last.headers["user-agent"].startswith("medloop-client/")


def test_projects(client: MedloopClient, server: Server) -> None:
    server.on("GET", "/api/v1/projects", json_body=page(project(), project(id="p2", name="knee")))
    server.on("POST", "/api/v1/projects", status=201, json_body=project())
    server.on("GET", P, json_body=project(extra_field="ignored"))

    listed = client.list_projects()
    assert isinstance(listed, Page)
    assert [p.name for p in listed.items] == ["retina", "knee"]
    assert listed.total == 2
    assert server.last.url.query == b""

    made = client.create_project(
        "retina",
        [
            Label(value=1, name="disc", color="#ff0000"),
            {"value": 2, "name": "cup", "color": "#00ff00"},
        ],
        image_kind="fundus",
        learning={"correction_weight": 8},
        finetune_every=5,
    )
    assert isinstance(made, ProjectOut)
    assert made.acceptance.margin == 0.01 and made.finetune_every == 10
    assert isinstance(made.created_at, datetime)
    sent = body(server.last)
    assert server.last.method == "POST"
    assert sent == {
        "name": "retina",
        "labels": [
            {"value": 1, "name": "disc", "color": "#ff0000"},
            {"value": 2, "name": "cup", "color": "#00ff00"},
        ],
        "image_kind": "fundus",
        "learning": {"correction_weight": 8},
        "finetune_every": 5,
    }

    client.create_project("x", [{"value": 1, "name": "a", "color": "#000000"}])
    assert set(body(server.last)) == {"name", "labels"}  # no server default restated
    client.create_project(
        "x",
        [{"value": 1, "name": "a", "color": "#000000"}],
        learning=Learning(steps=50),
        training=Training(patch_size=[128], budget_s=60),
    )
    sent = body(server.last)
    assert sent["learning"] == {"steps": 50}
    assert sent["training"] == {"patch_size": [128], "budget_s": 60}

    got = client.get_project("retina")
    assert got.production_version == "v0001"
    assert not hasattr(got, "extra_field")


def test_ids_are_percent_encoded_and_dot_segments_refused(
    client: MedloopClient, server: Server
) -> None:
    server.on("GET", "/api/v1/projects/my%20proj%2Fx/images/a%3Fb", json_body=image())
    client.get_image("my proj/x", "a?b")
    assert server.last.url.raw_path == b"/api/v1/projects/my%20proj%2Fx/images/a%3Fb"
    n = len(server.requests)
    for bad in ("", ".", "..", "a\x00b"):
        with pytest.raises(InvalidArgument):
            client.get_project(bad)
        with pytest.raises(InvalidArgument):
            client.get_analysis("retina", bad)
    assert len(server.requests) == n


def test_add_and_list_reference(client: MedloopClient, server: Server, tmp_path: Path) -> None:
    server.on(
        "POST",
        f"{P}/reference",
        status=201,
        json_body={"id": "r1", "image_id": "i1", "split": "val", "mask_sha256": "cd" * 32},
    )
    server.on(
        "GET",
        f"{P}/reference",
        json_body=page({"id": "r1", "image_id": "i1", "split": "val", "mask_sha256": "cd" * 32}),
    )
    img = tmp_path / "img01.png"
    img.write_bytes(PNG + b"image")
    ref = client.add_reference("retina", img, PNG + b"mask", split="val")
    assert ref.split == "val"
    parts = multipart(server.last)
    assert set(parts) == {"image", "mask", "split"}
    assert parts["image"] == ("img01.png", "image/png", PNG + b"image")
    assert parts["mask"] == ("mask.png", "image/png", PNG + b"mask")
    assert parts["split"][2] == b"val"

    client.add_reference("retina", str(img), img, filename="renamed.png")
    parts = multipart(server.last)
    assert parts["image"][0] == "renamed.png"
    assert parts["mask"][0] == "img01.png"
    assert parts["split"][2] == b"train"

    assert client.list_reference("retina").items[0].id == "r1"
    client.list_reference("retina", split="val", limit=5, offset=10)
    assert server.last.url.params == httpx.QueryParams(
        {"limit": "5", "offset": "10", "split": "val"}
    )


def test_upload_image_from_path_bytes_and_file_object(
    client: MedloopClient, server: Server, tmp_path: Path
) -> None:
    server.on("POST", f"{P}/images", status=201, json_body=image())
    server.on("POST", f"{P}/images", status=200, json_body=image())
    src = tmp_path / "scan.png"
    src.write_bytes(PNG + b"pixels")

    out = client.upload_image("retina", src)
    assert isinstance(out, ImageOut)
    assert out.spacing_mm == [0.1, 0.1]
    assert multipart(server.last) == {"file": ("scan.png", "image/png", PNG + b"pixels")}

    client.upload_image("retina", PNG + b"pixels")  # 200: the same bytes existed
    assert multipart(server.last)["file"][:2] == ("image.png", "image/png")

    jpeg = b"\xff\xd8\xff\xe0" + b"jfif"
    client.upload_image("retina", io.BytesIO(jpeg), filename="photo.jpg")
    assert multipart(server.last)["file"] == ("photo.jpg", "image/jpeg", jpeg)

    dicom = b"\x00" * 128 + b"DICM" + b"rest"
    client.upload_image("retina", dicom)
    assert multipart(server.last)["file"][:2] == ("image.dcm", "application/dicom")

    client.upload_image("retina", b"unknown bytes", filename="notes.txt")
    assert multipart(server.last)["file"][:2] == ("notes.txt", "text/plain")

    with pytest.raises(InvalidArgument, match="does not exist"):
        client.upload_image("retina", tmp_path / "missing.png")


def test_upload_streams_from_an_open_file(
    client: MedloopClient, server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A path goes to httpx as an open file object (streamed in chunks), closed afterwards."""
    server.on("POST", f"{P}/images", status=201, json_body=image())
    src = tmp_path / "big.png"
    data = PNG + b"x" * 300_000
    src.write_bytes(data)
    handed: list[object] = []
    real_request = client._http.request

    def spy(*args: Any, **kw: Any) -> httpx.Response:
        handed.append(kw["files"]["file"][1])
        return real_request(*args, **kw)

    monkeypatch.setattr(client._http, "request", spy)
    client.upload_image("retina", src)
    (fh,) = handed
    assert isinstance(fh, io.BufferedReader)
    assert fh.closed
    assert multipart(server.last)["file"][2] == data


def test_image_download(client: MedloopClient, server: Server) -> None:
    server.on("GET", f"{P}/images/i1", json_body=image())
    server.on("GET", f"{P}/images/i1/file", content=PNG, headers={"content-type": "image/png"})
    assert client.get_image("retina", "i1").sha256 == "ab" * 32
    assert client.download_image("retina", "i1") == PNG


def test_analyze_by_id_and_by_upload(client: MedloopClient, server: Server, tmp_path: Path) -> None:
    server.on("POST", f"{P}/analyses", status=201, json_body=analysis())
    a = client.analyze("retina", image_id="i1")
    assert isinstance(a, AnalysisOut)
    assert a.measurements[0].area_mm2 == 3.21
    assert body(server.last) == {"image_id": "i1"}
    assert server.last.headers["content-type"] == "application/json"

    client.analyze("retina", image_id="i1", version="v0002")
    assert body(server.last) == {"image_id": "i1", "version": "v0002"}

    src = tmp_path / "scan.png"
    src.write_bytes(PNG)
    client.analyze("retina", file=src)
    assert set(multipart(server.last)) == {"file"}
    server.on("POST", f"{P}/images", status=201, json_body=image(id="i9"))
    n = len(server.requests)
    client.analyze("retina", file=src, version="v0002")
    upload, analyse = server.requests[n:]
    assert upload.url.path == f"{P}/images"
    assert multipart(upload)["file"][0] == "scan.png"
    assert analyse.url.path == f"{P}/analyses"
    assert body(analyse) == {"image_id": "i9", "version": "v0002"}

    n = len(server.requests)
    with pytest.raises(InvalidArgument, match="exactly one"):
        client.analyze("retina")
    with pytest.raises(InvalidArgument, match="exactly one"):
        client.analyze("retina", image_id="i1", file=src)
    assert len(server.requests) == n


def test_analysis_reads(client: MedloopClient, server: Server) -> None:
    server.on("GET", f"{P}/analyses/a1", json_body=analysis(corrected=True))
    server.on("GET", f"{P}/analyses", json_body=page(analysis(), total=120))
    server.on("GET", f"{P}/analyses/a1/mask", content=PNG + b"mask")
    server.on("GET", f"{P}/analyses/a1/overlay", content=PNG + b"overlay")
    assert client.get_analysis("retina", "a1").corrected is True
    listed = client.list_analyses("retina")
    assert listed.total == 120
    assert server.last.url.params == httpx.QueryParams({"limit": "50", "offset": "0"})
    client.list_analyses("retina", limit=10, offset=20)
    assert server.last.url.params == httpx.QueryParams({"limit": "10", "offset": "20"})
    assert client.analysis_mask("retina", "a1") == PNG + b"mask"
    assert client.analysis_overlay("retina", "a1") == PNG + b"overlay"
    with pytest.raises(InvalidArgument):
        client.list_analyses("retina", limit=0)
    with pytest.raises(InvalidArgument):
        client.list_analyses("retina", offset=-1)


def test_corrections_and_review_queue(
    client: MedloopClient, server: Server, tmp_path: Path
) -> None:
    server.on("POST", f"{P}/analyses/a1/corrections", status=201, json_body=correction())
    server.on("GET", f"{P}/corrections", json_body=page(correction()))
    server.on(
        "GET", f"{P}/review-queue", json_body=page({"analysis": analysis(), "image": image()})
    )
    mask = tmp_path / "fixed.png"
    mask.write_bytes(PNG + b"fixed")
    fix = client.correct("retina", "a1", mask)
    assert fix.dice_vs_prediction == pytest.approx(0.8765)
    assert fix.corrections_until_finetune == 3
    assert server.last.method == "POST"
    assert multipart(server.last) == {"file": ("fixed.png", "image/png", PNG + b"fixed")}

    assert client.list_corrections("retina").items[0].seq == 7
    q = client.review_queue("retina")
    assert q.items[0].analysis.id == "a1" and q.items[0].image.filename == "scan.png"
    assert server.last.url.params == httpx.QueryParams({"limit": "20", "offset": "0"})


def test_models(client: MedloopClient, server: Server) -> None:
    server.on(
        "GET",
        f"{P}/models",
        json_body=page(
            model_version(),
            model_version(version="v0002", status="candidate", parent="v0001", kind="finetune"),
        ),
    )
    server.on(
        "GET",
        f"{P}/models/v0002",
        json_body=model_version(version="v0002", report={"promote": False}),
    )
    server.on("POST", f"{P}/models/v0002/promote", json_body=model_version(version="v0002"))
    server.on("POST", f"{P}/models/rollback", json_body=model_version(version="v0001"))
    assert [m.status for m in client.list_models("retina").items] == ["production", "candidate"]
    assert client.get_model("retina", "v0002").report == {"promote": False}
    assert client.promote("retina", "v0002").version == "v0002"
    assert server.last.content == b""
    client.promote("retina", "v0002", reason="checked by hand")
    assert body(server.last) == {"reason": "checked by hand"}
    assert server.last.method == "POST"
    assert client.rollback("retina").version == "v0001"
    assert server.last.url.path == f"{P}/models/rollback"


def test_download_model(client: MedloopClient, server: Server, tmp_path: Path) -> None:
    payload = b"PK\x03\x04" + bytes(range(256)) * 1000
    server.on(
        "GET",
        f"{P}/models/v0002/download",
        content=payload,
        headers={"content-type": "application/zip"},
    )
    path = client.download_model("retina", "v0002", tmp_path)
    assert path == tmp_path / "v0002.zip"
    assert path.read_bytes() == payload
    assert server.last.headers["authorization"] == f"Bearer {TOKEN}"

    dest = tmp_path / "sub" / "model.zip"
    assert client.download_model("retina", "v0002", dest) == dest
    assert dest.read_bytes() == payload

    with pytest.raises(NotFound, match="no v0009"):
        server.on(
            "GET",
            f"{P}/models/v0009/download",
            status=404,
            json_body={"error": {"code": "not_found", "message": "no v0009"}},
        )
        client.download_model("retina", "v0009", tmp_path / "v0009.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub", "v0002.zip"]


def test_jobs(client: MedloopClient, server: Server) -> None:
    server.on("POST", f"{P}/jobs", status=202, json_body=job())
    server.on("GET", f"{P}/jobs", json_body=page(job(), job(id="j0", state="succeeded")))
    server.on("GET", f"{P}/jobs/j1", json_body=job(state="running", progress=0.5))
    server.on("POST", f"{P}/jobs/j1/cancel", json_body=job(state="cancelled"))
    created = client.create_job("retina", "finetune", {"steps": 50})
    assert created.state == "queued"
    assert body(server.last) == {"kind": "finetune", "options": {"steps": 50}}
    client.create_job("retina", "evaluate")
    assert body(server.last) == {"kind": "evaluate", "options": {}}
    assert [j.id for j in client.list_jobs("retina").items] == ["j1", "j0"]
    got = client.get_job("retina", "j1")
    assert got.progress == 0.5 and not got.finished
    cancelled = client.cancel_job("retina", "j1")
    assert cancelled.finished
    assert server.last.method == "POST" and server.last.url.path == f"{P}/jobs/j1/cancel"


def test_audit(client: MedloopClient, server: Server) -> None:
    server.on("GET", "/api/v1/audit", json_body=page(audit_event(), total=1))
    events = client.audit(limit=10, offset=5)
    assert events.items[0].action == "image.read"
    assert server.last.url.params == httpx.QueryParams({"limit": "10", "offset": "5"})


def test_constructor_checks() -> None:
    with pytest.raises(InvalidArgument, match="http"):
        MedloopClient("medloop.test:8000", TOKEN)
    with pytest.raises(InvalidArgument, match="server URL"):
        MedloopClient("", TOKEN)
    with pytest.raises(InvalidArgument, match="line break"):
        MedloopClient(BASE, "abc\ndef")
    with pytest.raises(InvalidArgument, match="CA bundle"):
        MedloopClient("https://medloop.test", TOKEN, verify="/nonexistent/ca.pem")


def test_verify_false_is_never_silent() -> None:
    with pytest.warns(RuntimeWarning, match="verification is OFF"):
        MedloopClient("https://medloop.test", TOKEN, verify=False).close()


def test_ca_bundle_path_is_used() -> None:
    import certifi

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MedloopClient("https://medloop.test", TOKEN, verify=certifi.where()).close()


def test_repr_hides_token(client: MedloopClient) -> None:
    assert TOKEN not in repr(client)
    assert BASE in repr(client)


def test_close_leaves_a_passed_http_client_open(server: Server) -> None:
    http = httpx.Client(transport=httpx.MockTransport(server))
    with MedloopClient(BASE, TOKEN, http_client=http):
        pass
    assert not http.is_closed
    owned = MedloopClient(BASE, TOKEN)
    owned.close()
    assert owned._http.is_closed


def test_empty_base_url_uses_the_http_clients_base(server: Server) -> None:
    server.on("GET", "/prefix/api/v1/me", json_body={"id": "u", "name": "n", "role": "admin"})
    http = httpx.Client(base_url="http://other.test/prefix", transport=httpx.MockTransport(server))
    c = MedloopClient("", TOKEN, http_client=http)
    assert c.me().project_id is None
    assert str(server.last.url) == "http://other.test/prefix/api/v1/me"


def test_base_url_with_path_prefix(server: Server) -> None:
    server.on("GET", "/medloop/api/v1/me", json_body={"id": "u", "name": "n", "role": "admin"})
    http = httpx.Client(transport=httpx.MockTransport(server))
    MedloopClient("https://proxy.test/medloop/", TOKEN, http_client=http).me()
    assert str(server.last.url) == "https://proxy.test/medloop/api/v1/me"


def test_connection_refused_is_a_transport_error() -> None:
    with (
        MedloopClient("http://127.0.0.1:1", TOKEN, timeout=5) as c,
        pytest.raises(TransportError) as info,
    ):
        c.health()
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_works_with_starlettes_test_client() -> None:
    """The in-process path the API tests use: TestClient is an httpx.Client."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    async def me(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"error": {"code": "unauthorized", "message": "no token"}}, 401)
        return JSONResponse({"id": "u1", "name": "cam", "role": "admin", "project_id": None})

    async def upload(request: Request) -> JSONResponse:
        form = await request.form()
        up = form["file"]
        assert not isinstance(up, str)
        data = await up.read()
        return JSONResponse(image(filename=up.filename, sha256=str(len(data))), 201)

    app = Starlette(
        routes=[Route("/api/v1/me", me), Route(f"{P}/images", upload, methods=["POST"])]
    )
    with TestClient(app) as tc:
        assert MedloopClient("http://testserver", TOKEN, http_client=tc).me().name == "cam"
        assert MedloopClient("", TOKEN, http_client=tc).upload_image("retina", PNG).sha256 == str(
            len(PNG)
        )
        from medloop.client import Unauthorized

        with pytest.raises(Unauthorized, match="no token"):
            MedloopClient("http://testserver", None, http_client=tc).me()
