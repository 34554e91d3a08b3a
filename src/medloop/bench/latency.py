"""Seconds per click of the interactive model at the sizes that matter, warm, one user.

Three cases, each with the network the planner would build for such data: a 2D image
of 512 x 512, a hippocampus-sized MR volume (36 x 50 x 35 voxels of 1 mm) and a CT-sized
volume (512 x 512 x 300 voxels of 0.7 x 0.7 x 2.5 mm), where only a window of one
patch around the clicks is run. Weights are random (time does not depend on them);
the image is prepared once per interaction (the first click, not counted) and each
click reruns the network on the window around the clicks, as the server does.

For the two volumes the SERVER's refine is timed as well (``server: ...`` rows; see
:mod:`medloop.bench.latency_server`): the same network as a stored version, an uploaded
NIfTI, an analysis, and each click through the refine service with everything it does
per click — only the HTTP framing left out.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from medloop.bench.machine import machine_description
from medloop.domain.clicks import Click, Guidance
from medloop.domain.image import Image
from medloop.domain.labels import LabelSet
from medloop.domain.model import GuidanceSpec, ModelManifest, NetworkSpec, PreprocessSpec

__all__ = ["CASES", "run_latency"]


@dataclass(frozen=True)
class Case:
    name: str
    shape: tuple[int, ...]
    spacing: tuple[float, ...] | None
    patch: tuple[int, ...]
    channels: tuple[int, ...]
    strides: tuple[tuple[int, ...], ...] | None
    target_spacing: tuple[float, ...] | None
    target_ms: float


CASES = (
    Case(
        "2D 512 x 512", (512, 512), None, (128, 128), (16, 32, 64, 128, 256, 512), None, None, 150
    ),
    Case(
        "MR 36 x 50 x 35",
        (36, 50, 35),
        (1.0, 1.0, 1.0),
        (40, 56, 40),
        (16, 32, 64, 128),
        None,
        (1.0, 1.0, 1.0),
        300,
    ),
    Case(
        "CT 512 x 512 x 300",
        (512, 512, 300),
        (0.7, 0.7, 2.5),
        (96, 96, 48),
        (16, 32, 64, 128, 256),
        ((2, 2, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2)),
        (1.4, 1.4, 2.5),
        1000,
    ),
)


def _manifest(case: Case) -> ModelManifest:
    spec = GuidanceSpec()
    dims = len(case.shape)
    scale = None if dims == 3 else (0.25, 0.25)
    return ModelManifest(
        NetworkSpec(
            1 + spec.channels(1), 2, case.channels, spatial_dims=dims, strides=case.strides
        ),
        PreprocessSpec(scale=scale, target_spacing=case.target_spacing),
        LabelSet.from_names(["object"]),
        case.patch,
        guidance=spec,
    )


def _time(case: Case, clicks: int, device: str | None) -> list[float]:
    from medloop.ml.inference import Predictor
    from medloop.ml.interactive import RefineSession
    from medloop.ml.network import build_network

    manifest = _manifest(case)
    predictor = Predictor(manifest, build_network(manifest.network).state_dict(), device)
    rng = np.random.default_rng(0)
    image = Image(
        pixels=rng.normal(0, 1, (*case.shape, 1)).astype(np.float32),
        spacing=case.spacing,
        affine=np.diag([*(case.spacing or (1.0, 1.0, 1.0)), 1.0]) if len(case.shape) == 3 else None,
    )
    session = RefineSession(predictor, image, np.zeros(case.shape, np.uint8))
    centre = [s // 2 for s in case.shape]
    seconds, given = [], []
    for i in range(clicks + 1):
        offset = [c + int(rng.integers(-5, 6)) for c in centre]
        given.append(Click(tuple(float(v) for v in offset), 1, i % 3 != 2))
        t0 = time.perf_counter()
        session.refine(Guidance(tuple(given)))
        if i:  # the first is the warm-up
            seconds.append(time.perf_counter() - t0)
    return seconds


def run_latency(
    json_path: Path, clicks: int = 10, device: str | None = None, server: bool = True
) -> dict[str, Any]:
    """Time ``clicks`` refinements per case (after one warm-up), and the server's refine
    on the volumes unless ``server`` is false; write JSON and print a table."""
    results: dict[str, Any] = {
        "machine": machine_description(device),
        "clicks": clicks,
        "cases": {},
    }
    table = Table("case", "p50", "p99", "target", title=f"seconds per click — {results['machine']}")
    from medloop.bench.latency_server import time_server_refine

    runs = [(case.name, case, lambda c: _time(c, clicks, device)) for case in CASES]
    runs += [
        (
            f"server: {case.name}",
            case,
            lambda c: time_server_refine(c, _manifest(c), clicks, device),
        )
        for case in CASES
        if len(case.shape) == 3 and server
    ]
    for name, case, timer in runs:
        secs = timer(case)
        p50, p99 = (float(np.percentile(secs, q)) for q in (50, 99))
        results["cases"][name] = {"p50_s": p50, "p99_s": p99, "target_s": case.target_ms / 1000}
        table.add_row(
            name, f"{p50 * 1000:.0f} ms", f"{p99 * 1000:.0f} ms", f"<= {case.target_ms:.0f} ms"
        )
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2))
    Console().print(table)
    return results
