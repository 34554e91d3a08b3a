"""The catalogue, part 4: DICOMweb secrets at rest and on the wire.

A fake PACS on loopback records what reaches it. The stored password, token and
de-identification key must not appear in the database files, the API's answers, the
audit trail or job logs; credentials in a URL are refused; a bearer token is sent as
a bearer token; the stored password never goes to another host; redirects are not
followed; a refused connection and an HTTP 500 read the same in the job log; and
``medloop secrets rotate`` leaves everything readable with a new key.
"""

from __future__ import annotations

import re
import stat
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.integration.process.serverproc import child_env, free_port, medloop_cmd

from .conftest import LABELS, Plain
from .live import wait_job

PASSWORD, TOKEN = "pw-7f3e9a1c-secret", "tok-b42d6e0f-secret"


class FakePacs:
    """A loopback HTTP server answering QIDO-RS with no instances (or ``status``)."""

    def __init__(self, status: int = 200, location: str | None = None) -> None:
        self.seen: list[dict[str, str]] = []
        pacs = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                pacs.seen.append(
                    {k.lower(): v for k, v in self.headers.items()} | {"path": self.path}
                )
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "application/dicom+json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"[]")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/dicom-web"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def pacs() -> Iterator[FakePacs]:
    p = FakePacs()
    yield p
    p.close()


_N = iter(range(1000))


@pytest.fixture
def project(plain: Plain) -> str:
    name = f"pacs{next(_N)}"
    with plain.client() as c:
        r = c.post("/api/v1/projects", json={"name": name, "labels": LABELS})
        assert r.status_code == 201, r.text
    return name


def _connect(plain: Plain, project: str, web: dict[str, Any], deid: bool = False) -> dict[str, Any]:
    with plain.client() as c:
        r = c.put(
            f"/api/v1/projects/{project}/dicom",
            json={"dicomweb": web, "deidentify_on_ingest": deid},
        )
    assert r.status_code == 200, r.text
    return dict(r.json())


def _sync(plain: Plain, project: str) -> dict[str, Any]:
    with plain.client() as c:
        r = c.post(f"/api/v1/projects/{project}/dicomweb/sync")
        assert r.status_code == 202, r.text
        return wait_job(c, f"/api/v1/projects/{project}/jobs/{r.json()['id']}", timeout=60)


def _everything_stored(plain: Plain) -> bytes:
    return b"".join(p.read_bytes() for p in plain.data_dir.glob("medloop.db*"))


def test_secrets_are_sealed_at_rest_and_never_shown(
    plain: Plain, project: str, pacs: FakePacs
) -> None:
    shown = _connect(
        plain, project, {"url": pacs.url, "auth": {"kind": "bearer", "token": TOKEN}}, deid=True
    )
    assert shown["dicomweb"]["auth"] == {
        "kind": "bearer",
        "username": None,
        "has_password": False,
        "has_token": True,
    }
    job = _sync(plain, project)
    assert job["state"] == "succeeded", job
    assert pacs.seen and all(h.get("authorization") == f"Bearer {TOKEN}" for h in pacs.seen)
    with plain.client() as c:
        answers = [
            c.get(f"/api/v1/projects/{project}/dicom").text,
            c.get("/api/v1/audit", params={"limit": 1000}).text,
            c.get(f"/api/v1/projects/{project}/jobs").text,
        ]
    stored = _everything_stored(plain)
    for text in answers:
        assert TOKEN not in text
    assert TOKEN.encode() not in stored
    # the de-identification key was made by the server: no 64-hex "key" in any JSON stored
    assert not re.search(rb'"key": ?"[0-9a-f]{64}"', stored)
    assert b'"sealed"' in stored


def test_basic_credentials_stay_with_their_host(plain: Plain, project: str, pacs: FakePacs) -> None:
    _connect(
        plain,
        project,
        {"url": pacs.url, "auth": {"kind": "basic", "username": "medloop", "password": PASSWORD}},
    )
    assert _sync(plain, project)["state"] == "succeeded"
    assert pacs.seen[-1]["authorization"].startswith("Basic ")
    assert PASSWORD.encode() not in _everything_stored(plain)
    kept = _connect(
        plain, project, {"url": pacs.url, "auth": {"kind": "basic", "username": "medloop"}}
    )
    assert kept["dicomweb"]["auth"]["has_password"] is True  # same server: kept
    other = FakePacs()
    try:
        moved = _connect(
            plain, project, {"url": other.url, "auth": {"kind": "basic", "username": "medloop"}}
        )
        assert moved["dicomweb"]["auth"]["has_password"] is False  # another server: dropped
        _sync(plain, project)
        import base64

        sent = [
            base64.b64decode(h["authorization"][6:]) for h in other.seen if "authorization" in h
        ]
        assert all(PASSWORD.encode() not in s for s in sent), sent
    finally:
        other.close()


def test_credentials_in_the_url_are_refused(plain: Plain, project: str) -> None:
    with plain.client() as c:
        r = c.put(
            f"/api/v1/projects/{project}/dicom",
            json={
                "dicomweb": {
                    "url": f"http://medloop:{PASSWORD}@127.0.0.1:9/x",
                    "auth": {"kind": "bearer", "token": TOKEN},
                }
            },
        )
        assert r.status_code == 422 and "credentials" in r.json()["error"]["message"]
        assert PASSWORD not in r.text
        audit = c.get("/api/v1/audit", params={"limit": 50}).text
    assert PASSWORD not in audit


def test_redirects_are_not_followed(plain: Plain, project: str) -> None:
    target = FakePacs()
    redirecting = FakePacs(status=302, location=target.url + "/studies")
    try:
        _connect(
            plain, project, {"url": redirecting.url, "auth": {"kind": "bearer", "token": TOKEN}}
        )
        job = _sync(plain, project)
        assert redirecting.seen and not target.seen
        assert "redirect" in job["log_tail"]
    finally:
        redirecting.close()
        target.close()


def _last_line(job: dict[str, Any]) -> str:
    lines = [re.sub(r"^\S+ ", "", line) for line in job["log_tail"].splitlines()]
    return next(line for line in reversed(lines) if "PACS" in line)


def test_the_job_log_does_not_tell_a_closed_port_from_a_server_error(
    plain: Plain, project: str
) -> None:
    failing = FakePacs(status=500)
    try:
        _connect(plain, project, {"url": failing.url, "enabled": False})
        refused_to = f"http://127.0.0.1:{free_port()}/dicom-web"
        http_500 = _sync(plain, project)
        _connect(plain, project, {"url": refused_to, "enabled": False})
        refused = _sync(plain, project)
    finally:
        failing.close()
    assert failing.seen
    assert _last_line(http_500) == _last_line(refused)
    assert http_500["result"]["error"] == refused["result"]["error"]
    for job in (http_500, refused):
        assert "500" not in job["log_tail"] and "Connection" not in job["log_tail"]
        assert "127.0.0.1" not in job["log_tail"]


def _medloop(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*medloop_cmd(), *args],
        capture_output=True,
        text=True,
        env=child_env(**(env or {})),
        timeout=120,
        check=False,
    )


def test_rotation_and_a_lost_key(plain: Plain, project: str, pacs: FakePacs) -> None:
    _connect(
        plain,
        project,
        {"url": pacs.url, "auth": {"kind": "basic", "username": "u", "password": PASSWORD}},
    )
    key_file = plain.data_dir / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    old_key = key_file.read_text()
    plain.srv.stop()
    try:
        done = _medloop("secrets", "rotate", "--data-dir", str(plain.data_dir))
        assert done.returncode == 0, done.stderr
        assert "new key" in done.stdout
        assert key_file.read_text() != old_key and len(key_file.read_text().split()) == 1
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        _check_refused_start(plain, key_file, old_key)
    finally:
        if plain.srv.proc is None or plain.srv.proc.poll() is not None:
            plain.srv.start()
    with plain.client() as c:
        shown = c.get(f"/api/v1/projects/{project}/dicom").json()
    assert shown["dicomweb"]["auth"]["has_password"] is True
    n = len(pacs.seen)
    assert _sync(plain, project)["state"] == "succeeded"
    import base64

    assert PASSWORD in base64.b64decode(pacs.seen[n]["authorization"][6:]).decode()


def _check_refused_start(plain: Plain, key_file: Path, old_key: str) -> None:
    """With the old key back (the new one lost), or a key file others may read, the server
    refuses to start rather than lose the secrets."""
    new_key = key_file.read_text()
    port = str(free_port())
    args = ("serve", "--data-dir", str(plain.data_dir), "--port", port)
    try:
        key_file.write_text(old_key)
        r = _medloop(*args)
        assert r.returncode != 0 and "cannot be opened" in r.stderr + r.stdout, r.stderr
        key_file.write_text(new_key)
        key_file.chmod(0o644)
        r = _medloop(*args)
        assert r.returncode != 0 and "chmod 600" in r.stderr + r.stdout, r.stderr
    finally:
        key_file.write_text(new_key)
        key_file.chmod(0o600)
