"""Volume viewer benchmark: time to the first slice and the scroll frame rate in Chromium.

Starts a real ``medloop serve`` on a temporary data folder, trains a tiny 3D model on
small synthetic volumes (a few steps: the figures are about the viewer, not the model),
analyses a CT-sized synthetic volume (512 x 512 x 300 int16, HU-like: air, a body, lungs,
a spine, noise) and opens it in Debian's Chromium (Playwright, headless) on loopback:

- time to the first slice: from setting the viewer's address to the three planes drawn
  (the image volume and the label volume fetched once, gzip'd, inflated in the page),
  measured in the page with ``performance.now()``; the first open (the server sends the
  viewer's copies prepared with the analysis), a second one, and a first open after the
  server restarted (nothing held in its memory); for the first, when each stream's first
  and last bytes arrived (Resource Timing), which tells the server's part from the page's;
- scroll frame rate: ``requestAnimationFrame``-driven scrolling of N slices (one slice per
  frame, through the slider's input event, each frame windowing the slice and its labels
  into the canvases), frames per second measured in the page, per plane.

    .venv/bin/python bench/viewer.py --json bench/results/viewer-cpu.json
    .venv/bin/python bench/viewer.py --shape 256,256,120 --json /tmp/quick.json

A benchmark, not a test: it prints a table and writes JSON with the machine named.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_load import Server  # a sibling script

CHROMIUM = "/usr/bin/chromium"
PROJECT = "ct"
TARGETS = {"first_slice_s": 2.0, "scroll_fps": 30.0}


def ct_volume(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """A CT-like int16 volume ``(X, Y, Z)`` in HU: air, an elliptic body of soft tissue,
    two lungs, a spine, noise of 15 HU."""
    rng = np.random.default_rng(seed)
    nx, ny, nz = shape
    x = (np.arange(nx) - nx / 2) / (nx / 2)
    y = (np.arange(ny) - ny / 2) / (ny / 2)
    xx, yy = np.meshgrid(x, y, indexing="ij")
    slab = np.full((nx, ny), -1000.0)
    slab[(xx / 0.85) ** 2 + (yy / 0.65) ** 2 <= 1] = 40.0
    for cx in (-0.4, 0.4):
        slab[((xx - cx) / 0.3) ** 2 + ((yy + 0.05) / 0.4) ** 2 <= 1] = -820.0
    slab[xx**2 + ((yy - 0.45) / 1.2) ** 2 <= 0.1**2] = 700.0
    vol = np.empty(shape, np.int16)
    for z in range(nz):
        vol[:, :, z] = np.clip(slab + rng.normal(0, 15, (nx, ny)), -1024, 3071)
    return vol


def _nifti(arr: np.ndarray, spacing: tuple[float, float, float]) -> bytes:
    return gzip.compress(nib.Nifti1Image(arr, np.diag([*spacing, 1.0])).to_bytes(), 1)


def _api(srv: Server, token: str, method: str, path: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, f"{srv.url}/api/v1{path}", headers=headers, timeout=900, **kw)


def _project(srv: Server, token: str) -> None:
    """Project ``ct`` (3D) with v0001 trained for a few steps on small synthetic volumes."""
    settings = {
        "name": PROJECT,
        "labels": [{"value": 1, "name": "lung", "color": "#ff3b30"}],
        "image_kind": "ct",
        "spatial_dims": 3,
        "training": {"steps": 4, "channels": [8, 16, 32], "batch_size": 2},
        "finetune_every": 0,
    }
    _api(srv, token, "POST", "/projects", json=settings).raise_for_status()
    for i, split in enumerate(["train", "train", "val"]):
        vol = ct_volume((48, 48, 24), seed=i)
        mask = (vol < -500) & (vol > -950)
        files = {
            "image": (f"c{i}.nii.gz", _nifti(vol, (1.0, 1.0, 1.0))),
            "mask": ("m.nii.gz", _nifti(mask.astype(np.uint8), (1.0, 1.0, 1.0))),
        }
        r = _api(
            srv, token, "POST", f"/projects/{PROJECT}/reference", files=files, data={"split": split}
        )
        r.raise_for_status()
    job = _api(srv, token, "POST", f"/projects/{PROJECT}/jobs", json={"kind": "train"}).json()
    while (
        state := _api(srv, token, "GET", f"/projects/{PROJECT}/jobs/{job['id']}").json()["state"]
    ) not in (
        "succeeded",
        "failed",
        "cancelled",
    ):
        time.sleep(0.5)
    if state != "succeeded":
        raise RuntimeError(f"training {state}")


OPEN_JS = """async (hash) => {
  const t0 = performance.now();
  location.hash = hash;
  await new Promise((done) => {
    const tick = () => document.querySelector("[data-testid=volume-grid][data-ready='1']")
      ? requestAnimationFrame(() => done()) : setTimeout(tick, 5);
    tick();
  });
  const res = performance.getEntriesByType("resource").filter((e) => e.name.includes("/voxels"));
  const bytes = res.slice(-2).reduce((n, e) => n + e.encodedBodySize, 0);
  const voxels = Object.fromEntries(res.slice(-2).map((e) => [
    e.name.includes("kind=labels") ? "labels" : "image",
    { first_byte_ms: e.responseStart - e.startTime, last_byte_ms: e.responseEnd - e.startTime },
  ]));
  return { ms: performance.now() - t0, bytes, voxels };
}"""

SCROLL_JS = """async ([plane, n]) => {
  const slider = document.querySelector(`[data-testid=slice-${plane}]`);
  const count = Number(slider.max) + 1;
  const start = Number(slider.value);
  const frames = [];
  await new Promise((done) => {
    let i = 0;
    const step = (t) => {
      frames.push(t);
      if (i === n) return done();
      i += 1;
      slider.value = String((start + i) % count);
      slider.dispatchEvent(new Event("input"));
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  });
  const spans = frames.slice(1).map((t, k) => t - frames[k]).sort((a, b) => a - b);
  return { fps: n / ((frames[n] - frames[0]) / 1000), p95_ms: spans[Math.floor(spans.length * 0.95)] };
}"""


def browse(
    srv: Server, token: str, analysis: str, n: int, runs: tuple[str, ...] = ("first", "second")
) -> dict[str, Any]:
    """Open the analysis once per run in Chromium, then scroll each plane (``n`` slices;
    0: no scrolling); the page's figures."""
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        page = browser.new_context(viewport={"width": 1360, "height": 860}).new_page()
        page.set_default_timeout(600_000)
        page.goto(srv.url + "/")
        page.get_by_test_id("token-input").fill(token)
        page.get_by_test_id("signin-submit").click()
        page.get_by_test_id("user-role").wait_for()
        for run in runs:
            page.evaluate("() => { location.hash = '#/worklist'; }")
            page.wait_for_timeout(500)
            out[f"open_{run}"] = page.evaluate(OPEN_JS, f"#/viewer/{analysis}")
        for plane in ("axial", "coronal", "sagittal") if n else ():
            page.get_by_test_id(f"main-plane-{plane}").click()
            page.wait_for_timeout(300)
            out[f"scroll_{plane}"] = page.evaluate(SCROLL_JS, [plane, n])
        browser.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", default="512,512,300", help="X,Y,Z of the CT volume")
    ap.add_argument("--frames", type=int, default=120, help="slices scrolled per plane")
    ap.add_argument("--json", type=Path, default=Path("bench/results/viewer-cpu.json"))
    ap.add_argument("--note", default="", help="recorded with the figures (e.g. a shared machine)")
    args = ap.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    assert len(shape) == 3, "--shape X,Y,Z"
    with tempfile.TemporaryDirectory(prefix="medloop-viewer-") as tmp:
        srv = Server(Path(tmp) / "srv", threads=os.cpu_count() or 1, device="cpu")
        srv.data_dir.mkdir()
        srv.env["MEDLOOP_MAX_UPLOAD_BYTES"] = str(1 << 30)
        token = srv.add_user("admin")
        srv.start()
        try:
            _project(srv, token)
            data = _nifti(ct_volume(shape), (0.7, 0.7, 1.0))  # type: ignore[arg-type]
            t = time.perf_counter()
            r = _api(
                srv,
                token,
                "POST",
                f"/projects/{PROJECT}/analyses",
                files={"file": ("ct.nii.gz", data)},
            )
            r.raise_for_status()
            analyse_s = time.perf_counter() - t
            page = browse(srv, token, r.json()["id"], args.frames)
            srv.stop()
            srv.start()
            page.update(browse(srv, token, r.json()["id"], 0, ("after_restart",)))
        finally:
            srv.stop()
    report(shape, len(data), analyse_s, page, args.json, args.note)


def report(
    shape: tuple[int, ...],
    upload: int,
    analyse_s: float,
    page: dict[str, Any],
    path: Path,
    note: str = "",
) -> None:
    """Print the table and write the JSON."""
    machine = (
        f"{platform.processor() or platform.machine()} CPU x{os.cpu_count()}, {platform.system()}"
    )
    rows = [
        ("first open: first slice (s)", page["open_first"]["ms"] / 1000),
        ("second open: first slice (s)", page["open_second"]["ms"] / 1000),
        ("first open after a restart (s)", page["open_after_restart"]["ms"] / 1000),
        *[
            (
                f"first open: {k} {edge} byte (s)",
                page["open_first"]["voxels"][k][f"{edge}_byte_ms"] / 1000,
            )
            for k in ("image", "labels")
            for edge in ("first", "last")
        ],
        ("voxels on the wire (MB, both volumes)", page["open_first"]["bytes"] / 1e6),
        ("upload to analysis, copies prepared (s)", analyse_s),
        *[
            (f"scroll {p} (fps)", page[f"scroll_{p}"]["fps"])
            for p in ("axial", "coronal", "sagittal")
        ],
        *[
            (f"scroll {p} p95 frame (ms)", page[f"scroll_{p}"]["p95_ms"])
            for p in ("axial", "coronal", "sagittal")
        ],
    ]
    print(f"volume {'x'.join(map(str, shape))} int16; {machine}")
    for name, value in rows:
        print(f"  {name:<40} {value:10.2f}")
    result = {
        "benchmark": "viewer",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "note": note,
        "browser": "Debian Chromium, headless, software rendering (Playwright)",
        "volume": {"shape": shape, "dtype": "int16", "nifti_gz_bytes": upload},
        "analyse_s": analyse_s,
        "targets": TARGETS,
        "page": page,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
