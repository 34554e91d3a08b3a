"""The catalogue, part 3: what the HTTP layer holds against an outsider.

Failed authentications are counted, audited within a budget and limited per client;
``X-Forwarded-For`` is believed only from the trusted proxy; half-sent requests are cut
off; the API documentation is off unless asked for, and then served from the server
itself under the same Content Security Policy.
"""

from __future__ import annotations

import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import Plain
from .live import Live, client_from

CSP = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'"


def _metric(text: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def test_one_client_cannot_fill_the_disk(bare: Live) -> None:
    """60 kB paths without a token, again and again: 401, then 429; a few short audit rows."""
    with bare.client("admin") as c:
        before = c.get("/metrics").text
    last = bare.last_audit_id()
    path = "/api/v1/projects/" + "x" * 60_000
    codes = []
    with client_from(bare.url, "127.0.40.1") as c:
        for _ in range(40):
            r = c.get(path)
            codes.append(r.status_code)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["code"] == "error" or "too many" in r.json()["error"]["message"]
    assert codes[:20] == [401] * 20 and codes[20:] == [429] * 20
    events = bare.audit_since(last)
    assert 1 <= len(events) <= 5
    assert all(len(e["detail"] or "") < 400 for e in events), "detail.path is cut"
    with client_from(bare.url, "127.0.40.1", bare.tokens["admin"]) as c:
        assert c.get("/api/v1/me").status_code == 429, "a blocked client does not even try tokens"
    with bare.client("admin") as c:
        after = c.get("/metrics").text
    assert (
        _metric(after, "medloop_auth_failures_total")
        - _metric(before, "medloop_auth_failures_total")
        == 20
    )
    assert (
        _metric(after, "medloop_auth_throttled_total")
        - _metric(before, "medloop_auth_throttled_total")
        >= 21
    )
    assert _metric(after, "medloop_auth_failures_unaudited_total") >= 15


def test_many_clients_are_audited_within_one_budget(live: Live) -> None:
    last = live.last_audit_id()
    for i in range(1, 101):
        with client_from(live.url, f"127.0.41.{i}", "mlp_wrong") as c:
            assert c.get("/api/v1/projects").status_code == 401
    assert len(live.audit_since(last)) <= 60


def test_forwarded_for_is_believed_only_from_the_trusted_proxy(plain: Plain) -> None:
    forged = {"X-Forwarded-For": "6.6.6.6"}
    with plain.client("127.0.0.1") as c:
        assert c.get("/api/v1/audit", params={"limit": 1}).status_code == 200
    for source in ("127.0.0.1", "127.0.0.2"):
        with client_from(plain.url, source, "mlp_wrong") as c:
            assert c.get("/api/v1/me", headers=forged).status_code == 401
    with plain.client() as c:
        events = c.get("/api/v1/audit", params={"limit": 2}).json()["items"]
    assert [e["client_ip"] for e in events] == ["6.6.6.6", "127.0.0.1"]


def _half_sent(url: str, payload: bytes, n: int) -> list[socket.socket]:
    host, port = url.removeprefix("http://").split(":")
    socks = []
    for _ in range(n):
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(payload)
        socks.append(s)
    return socks


def _closed_within(socks: list[socket.socket], seconds: float) -> list[bytes]:
    """What each socket got before the server closed it (fails if one stays open)."""
    got = []
    deadline = time.monotonic() + seconds
    for s in socks:
        data = b""
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            while chunk := s.recv(4096):
                data += chunk
        except TimeoutError:
            pytest.fail(f"a half-sent request was still open after {seconds} s")
        finally:
            s.close()
        got.append(data)
    return got


@pytest.mark.parametrize(
    "payload",
    [b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"GET /api/v1/projects/discs/images?x="],
    ids=["nothing", "headers without their end", "half a request line"],
)
def test_half_sent_heads_are_cut_off(plain: Plain, payload: bytes) -> None:
    socks = _half_sent(plain.url, payload, 50)
    answers = _closed_within(socks, 6.0)
    if payload:
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[:2]
    with plain.client() as c:  # the server still serves
        assert c.get("/healthz").status_code == 200


def test_a_stalled_body_is_cut_off(plain: Plain) -> None:
    head = (
        "POST /api/v1/projects HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {plain.admin}\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    with plain.client() as c:
        before = c.get("/api/v1/projects").json()["total"]
    socks = _half_sent(plain.url, head + b'{"name": "slow"', 20)
    answers = _closed_within(socks, 8.0)
    assert all(b" 408 " in a.split(b"\r\n")[0] for a in answers), answers[:2]
    with plain.client() as c:
        assert c.get("/api/v1/projects").json()["total"] == before


def test_docs_are_off_by_default(live: Live) -> None:
    with live.client("admin") as c:
        for path in ("/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui-bundle.js"):
            assert c.get(path).status_code == 404, path


def test_docs_come_from_the_server_under_the_same_csp(plain: Plain) -> None:
    with client_from(plain.url, "127.0.0.1") as c:
        page = c.get("/docs")
        assert page.status_code == 200 and page.headers["content-security-policy"].startswith(CSP)
        assert (
            c.get("/").headers["content-security-policy"] == page.headers["content-security-policy"]
        )
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources and all(s.startswith("/") for s in sources), sources  # no CDN
        for s in sources:
            assert c.get(s).status_code == 200, s
        assert c.get("/docs/assets/../secret.key").status_code == 404
        schema = c.get("/openapi.json").json()
        assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        assert c.get("/redoc").status_code == 404


def test_swagger_ui_runs_under_the_csp(plain: Plain, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("Debian's Chromium is missing: run scripts/install-browser.sh")
    problems: list[str] = []
    requested: list[str] = []

    def browse() -> int:
        # In a thread of its own: the browser tests' Playwright may hold this thread's loop.
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(chromium), args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            try:
                page = browser.new_page()
                page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: problems.append(str(e)))
                page.on("request", lambda req: requested.append(req.url))
                page.goto(plain.url + "/docs")
                page.wait_for_selector(".opblock", timeout=30_000)
                page.screenshot(path=str(tmp_path / "docs.png"))
                return page.locator(".opblock").count()
            finally:
                browser.close()

    with ThreadPoolExecutor(1) as pool:
        operations = pool.submit(browse).result(timeout=120)
    assert operations >= 30
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
    assert all(u.startswith(plain.url) or u.startswith("data:") for u in requested), requested
