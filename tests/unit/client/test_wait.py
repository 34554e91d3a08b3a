"""wait_for_job polls until a final state, tolerates a restarting server, times out."""

from __future__ import annotations

import pytest

from medloop.client import JobOut, JobTimeout, MedloopClient, NotFound, TransportError

from .conftest import Server, job

J = "/api/v1/projects/retina/jobs/j1"


def test_polls_until_finished(client: MedloopClient, server: Server) -> None:
    server.on("GET", J, json_body=job(state="queued"))
    server.on("GET", J, json_body=job(state="running", progress=0.25))
    server.on("GET", J, json_body=job(state="running", progress=0.75))
    server.on("GET", J, json_body=job(state="succeeded", progress=1.0, result={"version": "v0002"}))
    seen: list[JobOut] = []
    done = client.wait_for_job("retina", "j1", timeout=10, poll=0, on_update=seen.append)
    assert done.state == "succeeded" and done.result == {"version": "v0002"}
    assert [(j.state, j.progress) for j in seen] == [
        ("queued", 0.0),
        ("running", 0.25),
        ("running", 0.75),
        ("succeeded", 1.0),
    ]
    assert len(server.requests) == 4
    assert all(r.method == "GET" and r.url.path == J for r in server.requests)


@pytest.mark.parametrize("state", ["failed", "cancelled"])
def test_failed_and_cancelled_are_returned(
    client: MedloopClient, server: Server, state: str
) -> None:
    server.on("GET", J, json_body=job(state=state, error="boom" if state == "failed" else None))
    assert client.wait_for_job("retina", "j1", poll=0).state == state
    assert len(server.requests) == 1


def test_times_out(client: MedloopClient, server: Server) -> None:
    server.on("GET", J, json_body=job(state="running", progress=0.5))
    with pytest.raises(JobTimeout) as info:
        client.wait_for_job("retina", "j1", timeout=0.05, poll=0.01)
    assert isinstance(info.value, TimeoutError)
    assert info.value.job is not None and info.value.job.state == "running"
    assert "still running (50%)" in str(info.value)
    assert len(server.requests) >= 2


def test_rides_out_a_restarting_server(client: MedloopClient, server: Server) -> None:
    server.on("GET", J, json_body=job(state="running"))
    server.on(
        "GET", J, status=503, json_body={"error": {"code": "unavailable", "message": "starting"}}
    )
    server.on("GET", J, status=502, content=b"bad gateway")
    server.on("GET", J, json_body=job(state="succeeded", progress=1.0))
    assert client.wait_for_job("retina", "j1", timeout=10, poll=0).state == "succeeded"


def test_first_poll_errors_propagate(client: MedloopClient, server: Server) -> None:
    with pytest.raises(NotFound):
        client.wait_for_job("retina", "j1", poll=0)
    with pytest.raises(TransportError):
        MedloopClient("http://127.0.0.1:1", "t", timeout=5).wait_for_job("retina", "j1", poll=0)


def test_a_4xx_while_polling_propagates(client: MedloopClient, server: Server) -> None:
    server.on("GET", J, json_body=job(state="running"))
    server.on(
        "GET", J, status=403, json_body={"error": {"code": "forbidden", "message": "token revoked"}}
    )
    from medloop.client import Forbidden

    with pytest.raises(Forbidden, match="token revoked"):
        client.wait_for_job("retina", "j1", timeout=10, poll=0)
