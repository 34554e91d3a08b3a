"""Error answers map onto the exception tree; connection problems become TransportError."""

from __future__ import annotations

import httpx
import pytest

from medloop.client import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    MedloopClient,
    MedloopClientError,
    NotFound,
    ServerError,
    TooManyRequests,
    TransportError,
    Unauthorized,
    UnexpectedResponse,
)

from .conftest import BASE, TOKEN, Server, project

P = "/api/v1/projects/retina"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (413, BadRequest),
        (415, BadRequest),
        (422, BadRequest),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
    ],
)
def test_error_status_maps_to_exception(
    client: MedloopClient, server: Server, status: int, cls: type[ApiError]
) -> None:
    server.on(
        "GET",
        P,
        status=status,
        json_body={"error": {"code": f"c{status}", "message": f"m{status}"}},
    )
    with pytest.raises(cls) as info:
        client.get_project("retina")
    err = info.value
    assert type(err) is cls
    assert isinstance(err, ApiError) and isinstance(err, MedloopClientError)
    assert (err.status, err.code, err.message) == (status, f"c{status}", f"m{status}")
    assert str(err) == f"m{status} (HTTP {status}, c{status})"


def test_other_4xx_is_a_plain_api_error(client: MedloopClient, server: Server) -> None:
    server.on("GET", P, status=408, json_body={"error": {"code": "timeout", "message": "slow"}})
    with pytest.raises(ApiError) as info:
        client.get_project("retina")
    assert type(info.value) is ApiError
    assert info.value.code == "timeout"


def test_429_says_when_to_try_again(client: MedloopClient, server: Server) -> None:
    server.on(
        "GET",
        P,
        status=429,
        json_body={"error": {"code": "too_much_work", "message": "wait"}},
        headers={"Retry-After": "17"},
    )
    with pytest.raises(TooManyRequests) as info:
        client.get_project("retina")
    assert info.value.code == "too_much_work" and info.value.retry_after == 17.0


def test_upload_errors_map_too(client: MedloopClient, server: Server) -> None:
    server.on(
        "POST",
        f"{P}/images",
        status=413,
        json_body={"error": {"code": "too_large", "message": "upload over 64 MiB"}},
    )
    with pytest.raises(BadRequest, match="upload over 64 MiB") as info:
        client.upload_image("retina", b"\x89PNG\r\n\x1a\n")
    assert info.value.status == 413


def test_error_without_json_falls_back_to_text(client: MedloopClient, server: Server) -> None:
    server.on("GET", P, status=502, content=b"<html>Bad Gateway from nginx</html>")
    with pytest.raises(ServerError) as info:
        client.get_project("retina")
    assert info.value.code == "http_502"
    assert info.value.message == "<html>Bad Gateway from nginx</html>"


def test_error_with_empty_body_uses_the_reason_phrase(
    client: MedloopClient, server: Server
) -> None:
    server.on("GET", P, status=404, content=b"")
    with pytest.raises(NotFound) as info:
        client.get_project("retina")
    assert info.value.message == "Not Found"


def test_long_error_text_is_cut(client: MedloopClient, server: Server) -> None:
    server.on("GET", P, status=500, content=b"x" * 5000)
    with pytest.raises(ServerError) as info:
        client.get_project("retina")
    assert len(info.value.message) <= 501


def test_fastapi_detail_bodies_are_understood(client: MedloopClient, server: Server) -> None:
    detail = [
        {"loc": ["body", "labels", 0, "color"], "msg": "String should match pattern", "type": "x"}
    ]
    server.on("POST", "/api/v1/projects", status=422, json_body={"detail": detail})
    with pytest.raises(BadRequest, match=r"labels\.0\.color: String should match pattern"):
        client.create_project("p", [{"value": 1, "name": "a", "color": "red"}])
    server.on("GET", P, status=401, json_body={"detail": "Not authenticated"})
    with pytest.raises(Unauthorized, match="Not authenticated"):
        client.get_project("retina")


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("peer closed connection"),
    ],
)
def test_transport_problems_become_transport_error(exc: httpx.TransportError) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    http = httpx.Client(transport=httpx.MockTransport(handler))
    c = MedloopClient(BASE, TOKEN, http_client=http)
    with pytest.raises(TransportError) as info:
        c.get_project("retina")
    assert info.value.__cause__ is exc
    assert f"{BASE}{P}" in str(info.value)
    with pytest.raises(TransportError):
        c.download_model("retina", "v0001", "unused.zip")


def test_a_2xx_with_the_wrong_shape_is_unexpected(client: MedloopClient, server: Server) -> None:
    server.on("GET", P, json_body={"id": "p1"})
    with pytest.raises(UnexpectedResponse, match="ProjectOut"):
        client.get_project("retina")
    server.on("GET", "/api/v1/projects", content=b"<html>login page</html>")
    with pytest.raises(UnexpectedResponse):
        client.list_projects()


def test_unknown_fields_are_ignored(client: MedloopClient, server: Server) -> None:
    server.on("GET", P, json_body=project(new_field=1, learning={"steps": 300, "future_knob": 3}))
    got = client.get_project("retina")
    assert got.learning.steps == 300
    assert "new_field" not in got.model_dump()
