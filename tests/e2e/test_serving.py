"""The UI's files and the routes it adds: static serving, CSP, server-side windowing, correction masks."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from .conftest import Session
from .helpers import capsule
from .server import LiveServer

WEB = Path(__file__).resolve().parents[2] / "src" / "medloop" / "web"
STRICT_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def test_the_page_and_its_files_are_served_under_the_strict_csp(server: LiveServer) -> None:
    r = httpx.get(server.url + "/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == STRICT_CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="/static/js/app.js">' in r.text
    for path, ctype in [
        ("/static/js/app.js", "text/javascript"),
        ("/static/js/viewer.js", "text/javascript"),
        ("/static/style.css", "text/css"),
        ("/static/favicon.svg", "image/svg+xml"),
    ]:
        r = httpx.get(server.url + path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith(ctype), path
        assert r.headers["content-security-policy"] == STRICT_CSP
    for bad in [
        "/static/../api/app.py",
        "/static/%2e%2e/api/app.py",
        "/static/js/../../api/routers/web.py",
        "/static/.hidden",
        "/static/js",
        "/static/nothing.js",
        "/static/index.py",
    ]:
        assert httpx.get(server.url + bad).status_code == 404, bad


def test_the_web_files_hold_no_inline_script_or_style_and_no_html_injection() -> None:
    html = (WEB / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script> in index.html"
    for f in [WEB / "index.html", *WEB.glob("js/*.js")]:
        text = f.read_text()
        for banned in (
            "<style",
            'style="',
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            'setAttribute("style"',
        ):
            assert banned not in text, f"{banned} in {f.name}"


def _png16(values: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(values.astype(np.uint16)).save(buf, format="PNG")
    return buf.getvalue()


def test_a_16_bit_image_is_windowed_by_the_server(
    server: LiveServer, session: Callable[[str], Session], tmp_path: Path
) -> None:
    src = np.asarray(Image.open(server.dataset / "images" / "case (8).png"), dtype=np.float64)
    values = (1000 + src * 16).astype(np.uint16)  # 1000 .. 5080
    path = tmp_path / "sixteen.png"
    path.write_bytes(_png16(values))
    analysis = server.analyze(path)
    image_id = analysis["image_id"]

    r = server.api("GET", server.project_path(f"/images/{image_id}/display"), "viewer")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert float(r.headers["x-pixel-min"]) == values.min()
    assert float(r.headers["x-pixel-max"]) == values.max()
    r = server.api(
        "GET", server.project_path(f"/images/{image_id}/display?center=3000&width=2000"), "viewer"
    )
    shown = np.asarray(Image.open(io.BytesIO(r.content)))
    assert shown.dtype == np.uint8 and shown.shape == (64, 64, 3)
    expected = np.clip(np.rint((values.astype(np.float64) - 2000) * (255 / 2000)), 0, 255)
    assert np.array_equal(shown[:, :, 0], expected.astype(np.uint8))
    bad = server.project_path(f"/images/{image_id}/display?center=3000&width=0")
    assert server.api("GET", bad, "viewer").status_code == 422
    unauth = httpx.get(f"{server.url}/api/v1" + server.project_path(f"/images/{image_id}/display"))
    assert unauth.status_code == 401

    s = session("annotator")
    s.open_analysis(analysis["id"])
    page = s.page
    assert "server" in page.get_by_test_id("wl-source").inner_text()
    page.evaluate(
        """() => {
          const set = (id, v) => { const e = document.querySelector(`[data-testid=${id}]`); e.value = String(v); e.dispatchEvent(new Event('input', {bubbles: true})); };
          set('wl-level', 3000); set('wl-width', 2000);
        }"""
    )
    page.locator("canvas[data-testid=stage][data-window='3000 2000']").wait_for()
    s.shot("viewer-16bit")


def test_the_correction_mask_route_is_guarded_and_audited(server: LiveServer) -> None:
    analysis = server.analyze(server.dataset / "images" / "case (14).png")
    mask = (server.dataset / "masks" / "case (14).png").read_bytes()
    r = server.api(
        "POST",
        server.project_path(f"/analyses/{analysis['id']}/corrections"),
        "annotator",
        files={"file": ("m.png", mask)},
    )
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    for who in ("viewer", "annotator", "admin"):
        got = server.api("GET", server.project_path(f"/corrections/{cid}/mask"), who)
        assert got.status_code == 200, who
        stored = np.asarray(Image.open(io.BytesIO(got.content)))
        expected = (np.asarray(Image.open(io.BytesIO(mask))) > 0).astype(np.uint8)
        assert np.array_equal(stored, expected)
    one = server.api("GET", server.project_path(f"/corrections/{cid}"), "viewer").json()
    assert one["id"] == cid and one["author"] == "annotator"
    url = f"{server.url}/api/v1" + server.project_path(f"/corrections/{cid}/mask")
    assert httpx.get(url).status_code == 401
    missing = server.api("GET", server.project_path("/corrections/nope/mask"), "viewer")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    events = server.api("GET", "/audit?limit=200").json()["items"]
    assert any(e["action"] == "correction.mask" and e["resource_id"] == cid for e in events)


def test_label_buffer_and_png_encoder_are_exact(
    server: LiveServer, session: Callable[[str], Session]
) -> None:
    """The UI's own modules, run in the page: painting, filling, undo/redo and PNG encoding."""
    s = session("viewer")
    out = s.page.evaluate(
        """async () => {
          const { LabelBuffer } = await import('/static/js/labels.js');
          const { encodeLabelPng, decodeLabelPng } = await import('/static/js/png.js');
          const W = 37, H = 23;
          const b = new LabelBuffer(W, H);
          b.begin(); b.paintSegment(3.5, 4.5, 20.5, 4.5, 1.5, 2); b.end();
          b.begin(); b.fillPolygon([[10, 10], [30, 10], [30, 20], [10, 20]], 3); b.end();
          b.begin(); b.paintSegment(0, 0, 0, 0, 0.5, 7); b.end();
          const painted = Array.from(b.data);
          b.undo();
          const undone = Array.from(b.data);
          b.redo();
          const redone = Array.from(b.data);
          const all = new Uint8Array(W * H).map((_, i) => (i * 7) % 256);
          const toArr = async (blob) => Array.from(new Uint8Array(await blob.arrayBuffer()));
          const deflated = await toArr(await encodeLabelPng(all, W, H));
          const stored = await toArr(await encodeLabelPng(all, W, H, { stored: true }));
          const back = await decodeLabelPng(await encodeLabelPng(all, W, H));
          return { painted, undone, redone, deflated, stored, back: Array.from(back.labels) };
        }"""
    )
    w, h = 37, 23
    painted = np.array(out["painted"], np.uint8).reshape(h, w)
    yy, xx = np.mgrid[:h, :w] + 0.5
    stroke = capsule((h, w), (3.5, 4.5), (20.5, 4.5), 1.5)
    square = (xx >= 10) & (xx < 30) & (yy >= 10) & (yy < 20)
    expected = np.zeros((h, w), np.uint8)
    expected[stroke] = 2
    expected[square] = 3
    expected[0, 0] = 7  # the pixel under the pointer, even for the smallest brush
    assert np.array_equal(painted, expected)
    assert np.array_equal(np.array(out["undone"], np.uint8).reshape(h, w)[0, 0], 0)
    assert out["redone"] == out["painted"]
    want = (np.arange(w * h) * 7 % 256).astype(np.uint8).reshape(h, w)
    for key in ("deflated", "stored"):
        img = Image.open(io.BytesIO(bytes(out[key])))
        assert img.mode == "L" and img.size == (w, h)
        assert np.array_equal(np.asarray(img), want), key
    assert np.array_equal(np.array(out["back"], np.uint8).reshape(h, w), want)
