"""Seconds per click of the SERVER's refine on a volume: warm, one user.

For a volume case of :mod:`medloop.bench.latency`, a throwaway server runtime (SQLite,
a blob store in a temporary folder, the model pool — ONNX Runtime on a CPU when
available — and the analyses' executor) gets a 3D project with one click-guided version
of random weights (time does not depend on them), the volume as an uploaded NIfTI and
an analysis of it. Each click then goes through
:meth:`~medloop.services.refine.Refinements.refine` exactly as the route calls it —
database read, the interaction cache, a window of one patch around the new click, the
merge into the interaction's label volume, running Dice, the gzip of the changed block
— plus the base64 the JSON answer carries. Only the HTTP framing is left out (this
package may not import the API). The first click (preparing the volume) is not counted.
"""

from __future__ import annotations

import base64
import gzip
import io
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medloop.domain.clicks import Click, Guidance
from medloop.domain.model import Lineage
from medloop.domain.settings import ProjectSettings

if TYPE_CHECKING:
    from medloop.bench.latency import Case
    from medloop.domain.model import ModelManifest
    from medloop.runtime import Runtime

__all__ = ["time_server_refine"]


def _nifti(case: Case) -> bytes:
    """The case's volume as a gzipped int16 NIfTI (noise), with its spacing."""
    import nibabel as nib

    rng = np.random.default_rng(0)
    arr = rng.normal(0, 100, case.shape).astype(np.int16)
    spacing = case.spacing or (1.0, 1.0, 1.0)
    img = nib.Nifti1Image(arr, np.diag([*spacing, 1.0]))
    buf = io.BytesIO()
    img.to_file_map({"image": nib.FileHolder(fileobj=buf), "header": nib.FileHolder(fileobj=buf)})
    return gzip.compress(buf.getvalue(), compresslevel=1)


def _analysis(rt: Runtime, case: Case, manifest: ModelManifest) -> tuple[str, str]:
    """A project with the version in production, the volume and an (empty) analysis."""
    from medloop.io.volumes import decode_volume, encode_label_volume
    from medloop.ml.network import build_network
    from medloop.services.common import software_versions
    from medloop.services.predictors import version_files
    from medloop.storage import repositories as repo
    from medloop.storage.artifacts import DbArtifactStore

    settings = ProjectSettings.parse(
        {
            "labels": [{"value": 1, "name": "object", "color": "#ff0000"}],
            "spatial_dims": 3,
            "max_frames": max(case.shape[2], 64),
        }
    )
    project = rt.services.projects.create("latency", settings).project
    store = DbArtifactStore(rt.db, rt.blobs, project.id)
    lineage = Lineage("train", None, (), (), {}, 0, software_versions())
    state = build_network(manifest.network).state_dict()
    version = store.add_version(version_files(manifest, state), manifest, lineage, {})
    store.promote(version.name, "latency bench")
    data = _nifti(case)
    image, _ = rt.services.images.ingest(
        project.id, [data], "volume.nii.gz", "application/gzip", None
    )
    empty = encode_label_volume(
        np.zeros(case.shape, np.uint8), decode_volume(data, name="volume.nii.gz")
    )
    ref = rt.blobs.put_bytes(empty)
    with rt.db.write() as s:
        repo.claim_blobs(s, rt.blobs.exists, ref.key)
        analysis = repo.create_analysis(
            s,
            project_id=project.id,
            image_id=image.id,
            model_version=version.name,
            label_blob_key=ref.key,
            label_sha256=ref.sha256,
            uncertainty=0.0,
            measurements=[],
        )
    return project.id, analysis.id


def time_server_refine(
    case: Case, manifest: ModelManifest, clicks: int, device: str | None
) -> list[float]:
    """Seconds of each of ``clicks`` refines (after one warm-up) of the server's service,
    each click near the volume's centre, clicks accumulating as a clinician's do."""
    from medloop.runtime import Runtime
    from medloop.settings import Settings

    with tempfile.TemporaryDirectory(prefix="medloop-latency-") as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            device=device,
            max_upload_bytes=1 << 30,
            max_image_pixels=max(100_000_000, int(np.prod(case.shape)) + 1),
        )
        rt = Runtime(settings)
        try:
            project_id, analysis_id = _analysis(rt, case, manifest)
            project = rt.services.projects.find(project_id)
            rng = np.random.default_rng(1)
            centre = [s // 2 for s in case.shape]
            seconds = []
            for i in range(clicks + 1):
                at = tuple(float(c + int(rng.integers(-5, 6))) for c in centre)
                guidance = Guidance((Click(at, 1, i % 3 != 2),))
                t0 = time.perf_counter()
                future = rt.services.refinements.refine(project, analysis_id, "bench", guidance)
                out = future.result(timeout=600)
                if out.block is None:
                    raise RuntimeError("a volume's refine answered no block")
                base64.b64encode(out.block.data)
                if i:  # the first prepares the volume: the warm-up
                    seconds.append(time.perf_counter() - t0)
            return seconds
        finally:
            rt.stop()
