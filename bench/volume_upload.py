"""Volumes: seconds from upload to result, and the server's memory peak on a CT-sized volume.

Starts a real ``medloop serve`` process on a temporary data folder, creates a 3D project
(labels 1 and 2) over the API, uploads hippocampus reference pairs from
``../shared/data/msd_hippocampus`` (train and val splits of its ``manifest.csv``; the
test split is never trained on) and trains a version through a ``train`` job with a
fixed small step count (the planner still chooses the network, patch and spacing for
that data). Then it times ``POST /api/v1/projects/{p}/analyses`` with a NIfTI upload,
from the client's side, until the JSON result is back:

- hippocampus ``test`` volumes, each uploaded once: the first upload (which loads the
  model) apart, then the median and p90 of the others;
- a CT-sized volume, 512 × 512 × 300 int16 voxels of 0.7 × 0.7 × 2.5 mm (noise plus a few
  ellipsoids, made here and written as ``.nii.gz`` into the temporary folder), uploaded
  a few times; meanwhile the server process's resident memory (``VmRSS``) is sampled
  every 20 ms, and its peak over the idle figure right before the upload is reported in
  MiB and in copies of the volume (float32 and int16).

    .venv/bin/python bench/volume_upload.py --json bench/results/volume-upload-cpu.json
    .venv/bin/python bench/volume_upload.py --ct-shape 256,256,150 --json /tmp/quick.json

The client shares the CPU with the server; on a machine with other work the seconds are
upper bounds. Exits non-zero with one line on stderr if the server fails.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_load import Server

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "msd_hippocampus"
PROJECT = "volumes"
MIB = 1024 * 1024
console = Console(stderr=True)


# -- data ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """A reference volume and its label volume, with its split."""

    image: Path
    mask: Path
    split: str


def manifest_rows(root: Path) -> list[dict[str, str]]:
    """The rows of the dataset's ``manifest.csv``, sorted by image path."""
    with open(root / "manifest.csv", newline="") as fh:
        return sorted(csv.DictReader(fh), key=lambda r: r["image"])


def reference_pairs(rows: list[dict[str, str]], root: Path, n_train: int, n_val: int) -> list[Pair]:
    """The first ``n_train`` train and ``n_val`` val pairs (never ``test``)."""
    out: list[Pair] = []
    for split, n in (("train", n_train), ("val", n_val)):
        chosen = [r for r in rows if r["split"] == split][:n]
        out += [Pair(root / r["image"], root / r["mask"], split) for r in chosen]
    return out


def test_volumes(rows: list[dict[str, str]], root: Path, n: int) -> list[Path]:
    """The first ``n`` volumes of the ``test`` split."""
    return [root / r["image"] for r in rows if r["split"] == "test"][:n]


def ct_volume(
    path: Path, shape: tuple[int, int, int], spacing: tuple[float, float, float], seed: int = 0
) -> int:
    """Write a CT-like int16 volume to ``path`` (``.nii.gz``); returns its size in bytes.

    Air (-1000 HU) around a soft-tissue body (40 HU) holding a few denser ellipsoids,
    with Gaussian noise (sd 20 HU). Built one slice at a time, so this process holds
    one int16 copy of the volume.
    """
    import nibabel as nib

    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(
        np.arange(shape[0], dtype=np.float32), np.arange(shape[1], dtype=np.float32), indexing="ij"
    )
    centres = rng.uniform(0.3, 0.7, (4, 3)) * np.asarray(shape, dtype=np.float32)
    radii = rng.uniform(0.05, 0.12, (4, 3)) * np.asarray(shape, dtype=np.float32)
    vol = np.empty(shape, np.int16)
    cx, cy = shape[0] / 2, shape[1] / 2
    body = ((x - cx) / (0.42 * shape[0])) ** 2 + ((y - cy) / (0.35 * shape[1])) ** 2 <= 1
    for z in range(shape[2]):
        sl = np.where(body, 40.0, -1000.0).astype(np.float32)
        for (ex, ey, ez), (rx, ry, rz) in zip(centres, radii, strict=True):
            dz = ((z - ez) / rz) ** 2
            if dz < 1:
                sl[((x - ex) / rx) ** 2 + ((y - ey) / ry) ** 2 + dz <= 1] = 300.0
        sl += rng.normal(0, 20, sl.shape).astype(np.float32)
        vol[:, :, z] = np.clip(sl, -1024, 3071).astype(np.int16)
    img = nib.Nifti1Image(vol, np.diag([*spacing, 1.0]))
    img.set_data_dtype(np.int16)
    nib.save(img, str(path))
    return path.stat().st_size


# -- the server's memory ------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid`` in bytes (``VmRSS`` of ``/proc/PID/status``)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class RssSampler:
    """Samples a process's resident memory every ``interval_s`` seconds in a thread.

    Use as a context manager; :attr:`peak` is the largest figure seen, in bytes.
    """

    def __init__(self, pid: int, interval_s: float = 0.02) -> None:
        self.pid, self.interval_s = pid, interval_s
        self.peak = rss_bytes(pid)
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        # SIGTERM and SIGINT go to the main thread, so they interrupt its request at once.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except (OSError, RuntimeError):
                return  # the process ended; the caller finds out from its request
            self.samples += 1
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# -- measuring ----------------------------------------------------------------------------------


@dataclass
class Upload:
    """One ``POST .../analyses`` with a file: seconds from the client's view, and the result."""

    name: str
    seconds: float
    uncertainty: float
    voxels: dict[str, int]
    idle_rss_mib: float | None = None
    peak_rss_mib: float | None = None
    peak_increase_mib: float | None = None


def analyse_file(c: httpx.Client, path: Path, pid: int | None = None) -> Upload:
    """Upload ``path`` for analysis and wait for the JSON result (raises on a non-201).

    With ``pid``, the server's resident memory is sampled meanwhile.
    """
    idle = rss_bytes(pid) if pid is not None else None
    sampler = RssSampler(pid) if pid is not None else None
    with open(path, "rb") as fh:
        t0 = time.perf_counter()
        if sampler is not None:
            with sampler:
                r = c.post(
                    f"/api/v1/projects/{PROJECT}/analyses",
                    files={"file": (path.name, fh, "application/gzip")},
                )
        else:
            r = c.post(
                f"/api/v1/projects/{PROJECT}/analyses",
                files={"file": (path.name, fh, "application/gzip")},
            )
        seconds = time.perf_counter() - t0
    if r.status_code != 201:
        raise RuntimeError(f"analysis of {path.name} answered {r.status_code}: {r.text[:300]}")
    body = r.json()
    up = Upload(
        name=path.name,
        seconds=round(seconds, 3),
        uncertainty=round(float(body["uncertainty"]), 4),
        voxels={m["name"]: int(m["area_px"]) for m in body["measurements"]},
    )
    if sampler is not None and idle is not None:
        up.idle_rss_mib = round(idle / MIB, 1)
        up.peak_rss_mib = round(sampler.peak / MIB, 1)
        up.peak_increase_mib = round((sampler.peak - idle) / MIB, 1)
    return up


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (linear) of ``values``; NaN when empty."""
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


# -- the server's side --------------------------------------------------------------------------


def create_project(c: httpx.Client, steps: int, max_frames: int) -> None:
    """A 3D project with labels 1 (anterior) and 2 (posterior), no automatic fine-tunes."""
    r = c.post(
        "/api/v1/projects",
        json={
            "name": PROJECT,
            "image_kind": "mri",
            "spatial_dims": 3,
            "labels": [
                {"value": 1, "name": "anterior", "color": "#ff0000"},
                {"value": 2, "name": "posterior", "color": "#00a0ff"},
            ],
            "training": {"steps": steps},
            "finetune_every": 0,
            "max_frames": max_frames,
        },
    )
    r.raise_for_status()


def upload_pairs(c: httpx.Client, pairs: list[Pair]) -> None:
    """Store each reference pair in the project (raises on the first refusal)."""
    for p in pairs:
        r = c.post(
            f"/api/v1/projects/{PROJECT}/reference",
            files={
                "image": (p.image.name, p.image.read_bytes()),
                "mask": (p.mask.name, p.mask.read_bytes()),
            },
            data={"split": p.split},
        )
        if r.status_code >= 300:
            raise RuntimeError(f"reference {p.image.name} answered {r.status_code}: {r.text[:300]}")


def train(c: httpx.Client, steps: int) -> tuple[dict[str, Any], float]:
    """Run a ``train`` job of ``steps`` steps; returns the finished job and its seconds."""
    t0 = time.perf_counter()
    r = c.post(
        f"/api/v1/projects/{PROJECT}/jobs", json={"kind": "train", "options": {"steps": steps}}
    )
    r.raise_for_status()
    job = r.json()
    while job["state"] not in ("succeeded", "failed", "cancelled"):
        time.sleep(1.0)
        r = c.get(f"/api/v1/projects/{PROJECT}/jobs/{job['id']}")
        r.raise_for_status()
        job = r.json()
    if job["state"] != "succeeded":
        raise RuntimeError(f"training {job['state']}: {job.get('error')}")
    return job, time.perf_counter() - t0


def model_summary(c: httpx.Client, version: str) -> dict[str, Any]:
    """The trained version's network, patch and target spacing, from the manifest in its
    archive (``GET .../models/{version}/download``)."""
    r = c.get(f"/api/v1/projects/{PROJECT}/models/{version}/download")
    r.raise_for_status()
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        manifest = json.loads(zf.read(f"{version}/manifest.json"))
    network = manifest["network"]
    return {
        "version": version,
        "channels": network["channels"],
        "patch_size": manifest["patch_size"],
        "target_spacing_mm": manifest["preprocess"].get("target_spacing"),
    }


# -- output -------------------------------------------------------------------------------------


def summary(uploads: list[Upload]) -> dict[str, Any]:
    """Median and p90 seconds of ``uploads``, and how many."""
    s = [u.seconds for u in uploads]
    return {
        "n": len(s),
        "median_s": round(statistics.median(s), 3) if s else None,
        "p90_s": round(percentile(s, 90), 3) if s else None,
    }


def print_table(report: dict[str, Any]) -> None:
    """The figures as a rich table on stdout."""
    table = Table(title=f"medloop volumes: upload to result ({report['machine']})")
    for col in ("volume", "uploads", "median s", "p90 s", "peak RSS increase"):
        table.add_column(col, justify="right")
    hip = report["hippocampus"]
    table.add_row("hippocampus, first (loads model)", "1", f"{hip['first_s']:.2f}", "", "")
    rest = hip["after_first"]
    table.add_row(
        "hippocampus", str(rest["n"]), f"{rest['median_s']:.2f}", f"{rest['p90_s']:.2f}", ""
    )
    ct = report["ct"]
    mem = ct["memory"]
    table.add_row(
        f"CT {'×'.join(map(str, ct['shape']))}",
        str(ct["summary"]["n"]),
        f"{ct['summary']['median_s']:.1f}",
        f"{ct['summary']['p90_s']:.1f}",
        f"{mem['peak_increase_mib']:.0f} MiB = {mem['float32_copies']:.2f}× float32, "
        f"{mem['int16_copies']:.2f}× int16",
    )
    Console().print(table)


def memory_figures(uploads: list[Upload], shape: tuple[int, ...]) -> dict[str, Any]:
    """The largest peak increase over idle among ``uploads``, in MiB and volume copies."""
    worst = max(u.peak_increase_mib or 0.0 for u in uploads)
    voxels = int(np.prod(shape))
    return {
        "peak_increase_mib": worst,
        "float32_volume_mib": round(voxels * 4 / MIB, 1),
        "int16_volume_mib": round(voxels * 2 / MIB, 1),
        "float32_copies": round(worst * MIB / (voxels * 4), 2),
        "int16_copies": round(worst * MIB / (voxels * 2), 2),
        "sampled_every_s": 0.02,
        "what": "peak VmRSS of the server process during the request, minus VmRSS right before",
    }


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="msd_hippocampus folder")
    ap.add_argument("--train-pairs", type=int, default=8)
    ap.add_argument("--val-pairs", type=int, default=4)
    ap.add_argument("--steps", type=int, default=20, help="training steps (network: planned)")
    ap.add_argument("--uploads", type=int, default=11, help="hippocampus test volumes analysed")
    ap.add_argument("--ct-shape", default="512,512,300", help="CT-sized volume, voxels X,Y,Z")
    ap.add_argument("--ct-spacing", default="0.7,0.7,2.5", help="its spacing in mm")
    ap.add_argument("--ct-repeats", type=int, default=3, help="uploads of the CT-sized volume")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="server threads")
    ap.add_argument(
        "--json", type=Path, default=ROOT / "bench" / "results" / "volume-upload-cpu.json"
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    return ap.parse_args(argv)


def _triple(text: str, kind: type) -> tuple[Any, Any, Any]:
    parts = [kind(v) for v in text.split(",")]
    if len(parts) != 3:
        raise SystemExit(f"volume_upload: expected three comma-separated values, got {text!r}")
    return parts[0], parts[1], parts[2]


def run(args: argparse.Namespace, work: Path, srv: Server) -> dict[str, Any]:
    """Train, then time the uploads; returns the report (without the machine)."""
    from medloop.bench.machine import machine_description

    load_at_start = [round(x, 2) for x in os.getloadavg()]
    ct_shape = _triple(args.ct_shape, int)
    ct_spacing = _triple(args.ct_spacing, float)
    rows = manifest_rows(args.data)
    pairs = reference_pairs(rows, args.data, args.train_pairs, args.val_pairs)
    tests = test_volumes(rows, args.data, args.uploads)
    if len(tests) < 2:
        raise RuntimeError(f"{args.data}: fewer than 2 test volumes")
    ct_path = work / "ct.nii.gz"
    ct_bytes = ct_volume(ct_path, ct_shape, ct_spacing)
    console.print(f"CT-sized volume: {ct_bytes / MIB:.0f} MiB gzipped")
    # The upload limit must take the CT file; the project's max_frames its slices.
    srv.env["MEDLOOP_MAX_UPLOAD_BYTES"] = str(max(64 * MIB, 2 * ct_bytes))
    # The server runs this checkout's code.
    srv.env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p
    )
    token = srv.add_user("bench")
    srv.start()
    assert srv.proc is not None
    pid = srv.proc.pid
    console.print(f"server: {srv.url} pid {pid} (log {srv.log})")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=srv.url, headers=headers, timeout=3600) as c:
        create_project(c, args.steps, max(1000, ct_shape[2]))
        upload_pairs(c, pairs)
        job, train_s = train(c, args.steps)
        version = job["result"]["version"]
        console.print(f"trained {version} in {train_s:.0f} s")
        hip = [analyse_file(c, p) for p in tests]
        console.print(f"hippocampus: first {hip[0].seconds:.2f} s, then {summary(hip[1:])}")
        ct: list[Upload] = []
        for i in range(args.ct_repeats):
            ct.append(analyse_file(c, ct_path, pid))
            console.print(f"CT {i + 1}: {ct[-1].seconds:.1f} s, +{ct[-1].peak_increase_mib} MiB")
        model = model_summary(c, version)
    return {
        "benchmark": "volume_upload",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_description("cpu"),
        "threads": args.threads,
        "load_average_at_start": load_at_start,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "data": str(args.data),
        "model": {
            **model,
            "train_steps": args.steps,
            "reference_pairs": {"train": args.train_pairs, "val": args.val_pairs},
            "train_seconds": round(train_s, 1),
        },
        "hippocampus": {
            "first_s": hip[0].seconds,
            "after_first": summary(hip[1:]),
            "uploads": [asdict(u) for u in hip],
        },
        "ct": {
            "shape": list(ct_shape),
            "spacing_mm": list(ct_spacing),
            "dtype": "int16",
            "file_mib": round(ct_bytes / MIB, 1),
            "summary": summary(ct),
            "memory": memory_figures(ct, ct_shape),
            "uploads": [asdict(u) for u in ct],
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not (args.data / "manifest.csv").is_file():
        print(f"volume_upload: no manifest.csv in {args.data}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="medloop-volumes-"))
    srv = Server(work / "srv", args.threads, "cpu")
    started = time.perf_counter()
    try:
        report = run(args, work, srv)
    except (
        RuntimeError,
        TimeoutError,
        httpx.HTTPError,
        OSError,
        subprocess.CalledProcessError,
    ) as err:
        print(f"volume_upload: failed: {err}".splitlines()[0], file=sys.stderr)
        return 1
    finally:
        srv.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report["seconds"] = round(time.perf_counter() - started, 1)
    print_table(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
