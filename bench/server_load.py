"""Server load benchmark: analyses/s and latency through HTTP next to the raw model's images/s.

Starts a real ``medloop serve`` process on a temporary data folder, trains a small model
through the API (``../shared/data/dsb2018_nuclei``, fluorescence, train split; or tiny
synthetic discs when the shared data is missing), uploads 256×256 images once, then
sends ``POST /api/v1/projects/{p}/analyses`` with JSON ``{"image_id"}`` from 1, 8 and 32
concurrent clients. In the same run, the production model is loaded in this process
with PyTorch eager (``Predictor``) and timed on the same images right before each level
(best of three rounds, on the main thread, on a worker thread, and in batches of 8):
the served analyses/s over that raw PyTorch rate is the figure of merit (goal on a CPU:
at least 1.2, i.e. the server, which serves the version's ``model.onnx`` with ONNX
Runtime, outruns the framework it is built on). The raw ONNX Runtime rate is recorded
beside it. Request counts and durations are bounded.

    .venv/bin/python bench/server_load.py                 # writes bench/results/server-load-cpu.json
    .venv/bin/python bench/server_load.py --steps 30 --levels 1,8 --json /tmp/quick.json

On a small machine the load-generating client threads share the CPU with the server:
the HTTP figures are then a lower bound.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster import free_port, medloop_cmd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "dsb2018_nuclei"
console = Console(stderr=True)


# -- the server process ---------------------------------------------------------------------


def _env(threads: int, device: str, runtime: str = "auto") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDLOOP_")}
    env.update(
        MEDLOOP_DEVICE=device,
        MEDLOOP_SERVING_RUNTIME=runtime,
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        PYTHONUNBUFFERED="1",
    )
    return env


class Server:
    def __init__(self, data_dir: Path, threads: int, device: str, runtime: str = "auto") -> None:
        self.data_dir = data_dir
        self.env = _env(threads, device, runtime)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def add_user(self, name: str) -> str:
        out = subprocess.run(
            [
                *medloop_cmd(),
                "users",
                "add",
                name,
                "--role",
                "admin",
                "--data-dir",
                str(self.data_dir),
            ],
            capture_output=True,
            text=True,
            env=self.env,
            check=True,
        )
        return out.stdout.strip().splitlines()[-1]

    def start(self, timeout: float = 180) -> None:
        cmd = [*medloop_cmd(), "serve", "--data-dir", str(self.data_dir), "--port", str(self.port)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"medloop serve exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise TimeoutError("medloop serve did not become healthy")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- data -------------------------------------------------------------------------------------


@dataclass
class Pair:
    image: Path
    mask: Path
    split: str


def _shared_pairs(root: Path, group: str, n_train: int, n_val: int) -> list[Pair]:
    """Reference pairs of ``group``; the smaller images first (quicker validation)."""
    with open(root / "manifest.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["group"] == group]
    out: list[Pair] = []
    for split, n in (("train", n_train), ("val", n_val)):
        sized = []
        for r in rows:
            if r["split"] == split:
                with Image.open(root / r["image"]) as im:
                    sized.append((im.size[0] * im.size[1], r["image"], r))
        sized.sort(key=lambda t: (t[0], t[1]))
        out += [Pair(root / r["image"], root / r["mask"], split) for _, _, r in sized[:n]]
    return out


def _crop256(arr: np.ndarray) -> np.ndarray:
    h, w = arr.shape[:2]
    if h < 256 or w < 256:
        pad = [(0, max(0, 256 - h)), (0, max(0, 256 - w))] + [(0, 0)] * (arr.ndim - 2)
        arr = np.pad(arr, pad, mode="reflect")
        h, w = arr.shape[:2]
    top, left = (h - 256) // 2, (w - 256) // 2
    return arr[top : top + 256, left : left + 256]


def _shared_test_images(root: Path, group: str, n: int) -> list[bytes]:
    with open(root / "manifest.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["group"] == group and r["split"] == "test"]
    rows.sort(key=lambda r: r["image"])
    out = []
    for r in rows[:n]:
        with Image.open(root / r["image"]) as im:
            arr = np.asarray(im.convert("L") if im.mode not in ("L", "RGB") else im)
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(_crop256(arr))).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def disc_pair(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[:size, :size]
    mask = np.zeros((size, size), np.uint8)
    for _ in range(size // 16):
        cy, cx = rng.integers(8, size - 8, 2)
        r = rng.integers(4, 10)
        mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 255
    img = np.clip(rng.normal(60, 12, (size, size)) + (mask > 0) * 130.0, 0, 255).astype(np.uint8)
    return img, mask


def _synthetic(
    folder: Path, n_train: int, n_val: int, n_test: int
) -> tuple[list[Pair], list[bytes]]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for i in range(n_train + n_val):
        img, mask = disc_pair(rng, 256)
        Image.fromarray(img).save(folder / f"img{i}.png")
        Image.fromarray(mask).save(folder / f"mask{i}.png")
        pairs.append(
            Pair(folder / f"img{i}.png", folder / f"mask{i}.png", "train" if i < n_train else "val")
        )
    tests = []
    for _ in range(n_test):
        buf = io.BytesIO()
        Image.fromarray(disc_pair(rng, 256)[0]).save(buf, format="PNG")
        tests.append(buf.getvalue())
    return pairs, tests


# -- measuring ----------------------------------------------------------------------------------


@dataclass
class Level:
    clients: int
    requests: int
    errors: int
    seconds: float
    analyses_per_s: float
    p50_ms: float
    p99_ms: float
    ratio_to_raw: float | None = None


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def run_level(
    url: str | list[str],
    token: str,
    project: str,
    ids: list[str],
    clients: int,
    n: int,
    max_s: float,
) -> Level:
    """``n`` analyses from ``clients`` threads; with several URLs (API replicas), client
    ``k`` sends to ``url[k % len(url)]``."""
    urls = [url] if isinstance(url, str) else url
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(n))
    deadline = time.monotonic() + max_s
    barrier = threading.Barrier(clients + 1)

    def client(i: int) -> None:
        with httpx.Client(
            base_url=urls[i % len(urls)], headers={"Authorization": f"Bearer {token}"}, timeout=300
        ) as c:
            barrier.wait()
            while time.monotonic() < deadline:
                with lock:
                    k = next(counter, None)
                if k is None:
                    return
                t0 = time.perf_counter()
                try:
                    r = c.post(
                        f"/api/v1/projects/{project}/analyses", json={"image_id": ids[k % len(ids)]}
                    )
                    ok = r.status_code == 201
                    err = "" if ok else f"{r.status_code} {r.text[:120]}"
                except httpx.HTTPError as exc:
                    ok, err = False, repr(exc)
                dt = time.perf_counter() - t0
                with lock:
                    if ok:
                        latencies.append(dt)
                    else:
                        errors.append(err)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        console.print(
            f"[yellow]{len(errors)} failed requests at {clients} clients, e.g. {errors[0]}"
        )
    return Level(
        clients=clients,
        requests=len(latencies),
        errors=len(errors),
        seconds=round(wall, 3),
        analyses_per_s=round(len(latencies) / wall, 3) if wall > 0 else 0.0,
        p50_ms=round(1000 * _percentile(latencies, 50), 1),
        p99_ms=round(1000 * _percentile(latencies, 99), 1),
    )


class RawModel:
    """The production model loaded in this process, timed on the same images as the server."""

    def __init__(
        self, version: str, archive: bytes, images: list[bytes], device: str, threads: int
    ) -> None:
        """``archive``: the version as ``GET .../models/{version}/download`` gives it."""
        import io
        import json
        import zipfile

        import torch

        from medloop.domain.model import ModelManifest
        from medloop.io import read_image
        from medloop.ml.inference import Predictor

        torch.set_num_threads(threads)
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            manifest = ModelManifest.from_dict(json.loads(zf.read(f"{version}/manifest.json")))
            weights = zf.read(f"{version}/weights.pt")
            names = set(zf.namelist())
            onnx = zf.read(f"{version}/model.onnx") if f"{version}/model.onnx" in names else None
        self.version = version
        self.predictor = Predictor.from_bytes(manifest, weights, device)
        # ONNX Runtime as the server runs it (one thread per session) and with every core.
        self.onnx = Predictor.from_onnx(manifest, onnx, 1) if onnx else None
        self.onnx_all = Predictor.from_onnx(manifest, onnx, threads) if onnx else None
        tmp = Path(tempfile.mkdtemp(prefix="medloop-raw-"))
        try:
            self.images = []
            for i, data in enumerate(images):
                (tmp / f"{i}.png").write_bytes(data)
                self.images.append(read_image(tmp / f"{i}.png"))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for im in self.images[:2]:
            self.predictor.predict(im)  # warm-up
            if self.onnx is not None and self.onnx_all is not None:
                self.onnx.predict(im)
                self.onnx_all.predict(im)

    def _timed(self, seq: list[Any], batch: int, in_thread: bool, predictor: Any = None) -> float:
        predictor = predictor or self.predictor

        def go() -> None:
            for k in range(0, len(seq), batch):
                if batch == 1:
                    predictor.predict(seq[k])
                else:
                    predictor.predict_many(seq[k : k + batch])

        t0 = time.perf_counter()
        if in_thread:
            t = threading.Thread(target=go)
            t.start()
            t.join()
        else:
            go()
        return len(seq) / (time.perf_counter() - t0)

    def measure(self, n: int, rounds: int = 3) -> dict[str, Any]:
        """Best of ``rounds`` (other load on the machine only slows a round down).

        Timed on the main thread and on a fresh thread, like the server's model thread:
        on a busy machine the two can differ by several times (OpenMP threads waiting
        for each other), and the better one is the baseline.
        """
        seq = [self.images[k % len(self.images)] for k in range(n)]
        ways = {
            "main_thread_one_at_a_time": (1, False),
            "worker_thread_one_at_a_time": (1, True),
            "worker_thread_batches_of_8": (8, True),
        }
        best = dict.fromkeys(ways, 0.0)
        for _ in range(rounds):
            for name, (batch, in_thread) in ways.items():
                best[name] = max(best[name], self._timed(seq, batch, in_thread))
        out: dict[str, Any] = {"images": n, "rounds": rounds}
        out.update({k: round(v, 3) for k, v in best.items()})
        out["images_per_s"] = round(max(best.values()), 3)
        if self.onnx is not None:
            ort = {
                "onnxruntime_one_thread": max(
                    self._timed(seq, 1, True, self.onnx) for _ in range(rounds)
                ),
                "onnxruntime_all_threads": max(
                    self._timed(seq, 1, False, self.onnx_all) for _ in range(rounds)
                ),
            }
            out.update({k: round(v, 3) for k, v in ort.items()})
            out["onnxruntime_images_per_s"] = round(max(ort.values()), 3)
        return out


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="dataset with manifest.csv")
    ap.add_argument("--group", default="fluorescence")
    ap.add_argument("--train-pairs", type=int, default=64)
    ap.add_argument("--val-pairs", type=int, default=12)
    ap.add_argument("--steps", type=int, default=300, help="training steps of the model")
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--channels", default="16,32,64,128")
    ap.add_argument("--images", type=int, default=16, help="distinct 256×256 images analysed")
    ap.add_argument("--levels", default="1,8,32", help="concurrent clients, comma-separated")
    ap.add_argument(
        "--requests", type=int, default=48, help="requests per level, at least 4 per client"
    )
    ap.add_argument("--max-seconds", type=float, default=60.0, help="time limit of each level")
    ap.add_argument(
        "--raw-repeats", type=int, default=16, help="images per raw-model round (best of 3)"
    )
    ap.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="torch threads, server and raw"
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--serving-runtime",
        default="auto",
        choices=["auto", "onnx", "torch"],
        help="the server's MEDLOOP_SERVING_RUNTIME",
    )
    ap.add_argument(
        "--json", type=Path, default=ROOT / "bench" / "results" / "server-load-cpu.json"
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    args = ap.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    channels = [int(c) for c in args.channels.split(",")]

    # SIGTERM (and SIGINT) end the run through ``finally``: the server is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    work = Path(tempfile.mkdtemp(prefix="medloop-load-"))
    srv = Server(work / "srv", args.threads, args.device, args.serving_runtime)
    started = time.perf_counter()
    try:
        if (args.data / "manifest.csv").is_file():
            source = f"{args.data} ({args.group})"
            pairs = _shared_pairs(args.data, args.group, args.train_pairs, args.val_pairs)
            tests = _shared_test_images(args.data, args.group, args.images)
        else:
            source = "synthetic discs (shared data missing)"
            pairs, tests = _synthetic(
                work / "synthetic", args.train_pairs, args.val_pairs, args.images
            )
        console.print(f"data: {source}; {len(pairs)} reference pairs, {len(tests)} test images")
        token = srv.add_user("bench")
        srv.start()
        console.print(f"server: {srv.url} (log {srv.log})")
        with httpx.Client(
            base_url=srv.url, headers={"Authorization": f"Bearer {token}"}, timeout=600
        ) as c:
            r = c.post(
                "/api/v1/projects",
                json={
                    "name": "load",
                    "labels": [{"value": 1, "name": "nucleus", "color": "#ff0000"}],
                    "training": {
                        "steps": args.steps,
                        "patch_size": [args.patch],
                        "channels": channels,
                    },
                    "finetune_every": 0,
                },
            )
            r.raise_for_status()
            for p in pairs:
                r = c.post(
                    "/api/v1/projects/load/reference",
                    files={
                        "image": (p.image.name, p.image.read_bytes()),
                        "mask": ("m.png", p.mask.read_bytes()),
                    },
                    data={"split": p.split},
                )
                r.raise_for_status()
            t0 = time.perf_counter()
            job = c.post("/api/v1/projects/load/jobs", json={"kind": "train"}).json()
            last = -1.0
            while job["state"] not in ("succeeded", "failed", "cancelled"):
                time.sleep(1.0)
                job = c.get(f"/api/v1/projects/load/jobs/{job['id']}").json()
                if job["progress"] - last >= 0.1:
                    last = job["progress"]
                    console.print(f"training: {job['progress']:.0%}")
            train_s = time.perf_counter() - t0
            if job["state"] != "succeeded":
                raise RuntimeError(f"training failed: {job.get('error')}")
            console.print(f"trained {job['result']['version']} in {train_s:.0f} s")
            ids = []
            for i, data in enumerate(tests):
                r = c.post(
                    "/api/v1/projects/load/images", files={"file": (f"t{i}.png", data, "image/png")}
                )
                r.raise_for_status()
                ids.append(r.json()["id"])
            for image_id in ids[:2]:  # warm-up: the model is loaded on first use
                c.post(
                    "/api/v1/projects/load/analyses", json={"image_id": image_id}
                ).raise_for_status()
            version = job["result"]["version"]
            archive = c.get(f"/api/v1/projects/load/models/{version}/download")
            archive.raise_for_status()

        raw = RawModel(version, archive.content, tests, args.device, args.threads)
        # The raw model is timed right before each level: other load on the machine
        # then weighs on both figures of a pair alike.
        results, raw_runs = [], []
        for n_clients in levels:
            raw_runs.append(raw.measure(args.raw_repeats))
            n = max(args.requests, 4 * n_clients)
            lv = run_level(srv.url, token, "load", ids, n_clients, n, args.max_seconds)
            ips = raw_runs[-1]["images_per_s"]  # PyTorch eager: the baseline
            lv.ratio_to_raw = round(lv.analyses_per_s / ips, 3) if ips else None
            results.append(lv)
            console.print(
                f"{n_clients} clients: {lv.analyses_per_s:.2f} analyses/s; raw model {ips:.2f} images/s"
            )
        raw_ips = max(r["images_per_s"] for r in raw_runs)
    finally:
        srv.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    table = Table(
        title=f"medloop server load ({args.device}, {args.threads} threads, 256×256, "
        f"serving runtime {args.serving_runtime})"
    )
    for col in (
        "clients",
        "requests",
        "errors",
        "analyses/s",
        "p50 ms",
        "p99 ms",
        "vs raw PyTorch",
    ):
        table.add_column(col, justify="right")
    for lv in results:
        table.add_row(
            str(lv.clients),
            str(lv.requests),
            str(lv.errors),
            f"{lv.analyses_per_s:.2f}",
            f"{lv.p50_ms:.0f}",
            f"{lv.p99_ms:.0f}",
            f"{lv.ratio_to_raw:.0%}" if lv.ratio_to_raw is not None else "-",
        )
    table.add_row("raw PyTorch (best)", str(args.raw_repeats), "", f"{raw_ips:.2f}", "", "", "100%")
    ort_runs = [r["onnxruntime_images_per_s"] for r in raw_runs if "onnxruntime_images_per_s" in r]
    raw_ort = max(ort_runs) if ort_runs else None
    if raw_ort:
        table.add_row(
            "raw ONNX Runtime (best)", "", "", f"{raw_ort:.2f}", "", "", f"{raw_ort / raw_ips:.0%}"
        )
    Console().print(table)
    best = max(results, key=lambda lv: lv.analyses_per_s)
    report = {
        "benchmark": "server_load",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "device": args.device,
        "threads": args.threads,
        "serving_runtime": args.serving_runtime,
        "load_average_at_start": load_at_start,
        "data": source,
        "model": {
            "version": raw.version,
            "train_steps": args.steps,
            "patch_size": args.patch,
            "channels": channels,
            "reference_pairs": len(pairs),
            "train_seconds": round(train_s, 1),
        },
        "image_size": [256, 256],
        "distinct_images": len(ids),
        "raw_model": {
            "runtime": "pytorch eager",
            "per_level": raw_runs,
            "images_per_s_best": round(raw_ips, 3),
            "onnxruntime_images_per_s_best": raw_ort,
        },
        "levels": [asdict(lv) for lv in results],
        "best_ratio_to_raw": best.ratio_to_raw,
        "goal": ">= 1.2x the raw PyTorch eager rate on CPU; >= 0.5x raw bf16 on GPU",
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {args.json}")
    return 1 if any(lv.errors for lv in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
