"""A tiny 3D project on a live server for the volume viewer's browser tests: NIfTI volumes
with one blob each (RAS+ on disk, so the stored arrays are the canonical ones), a 3D model
trained for a few steps, and the page-side geometry of a plane's stage."""

from __future__ import annotations

import gzip
import time
from typing import Any

import nibabel as nib
import numpy as np

from .conftest import Session
from .server import LiveServer

__all__ = [
    "NX",
    "NY",
    "NZ",
    "SHAPE",
    "VOLS",
    "build_volume_project",
    "nifti",
    "page_slice",
    "stage_point",
    "volume_bytes",
    "wait_value",
]

VOLS = "vols"
SHAPE = (24, 28, 20)
"""(X, Y, Z) voxels, 1 mm isotropic, RAS+."""
NX, NY, NZ = SHAPE


def volume_bytes(seed: int) -> tuple[bytes, bytes]:
    """A gzipped NIfTI int16 volume with a bright ellipsoid, and its 0/1 label volume."""
    rng = np.random.default_rng(seed)
    xx, yy, zz = np.mgrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    c = rng.integers(9, 15, 3)
    blob = ((xx - c[0]) / 6.0) ** 2 + ((yy - c[1]) / 7.0) ** 2 + ((zz - c[2]) / 5.0) ** 2 <= 1
    img = (rng.normal(100, 15, SHAPE) + blob * 150).astype(np.int16)
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    pack = [
        gzip.compress(nib.Nifti1Image(a, affine).to_bytes()) for a in (img, blob.astype(np.uint8))
    ]
    return pack[0], pack[1]


def nifti(data: bytes) -> np.ndarray:
    """The voxels of a (gzipped) NIfTI, ``(X, Y, Z)``."""
    raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    return np.asarray(nib.Nifti1Image.from_bytes(raw).dataobj)


def build_volume_project(srv: LiveServer, who: str = "annotator") -> None:
    """Project :data:`VOLS` (3D, CT, label 1 "blob") with its annotator; v0001 trained on
    three volumes for a few steps."""
    settings = {
        "name": VOLS,
        "labels": [{"value": 1, "name": "blob", "color": "#ff3b30"}],
        "image_kind": "ct",
        "spatial_dims": 3,
        "max_frames": 64,
        "training": {"steps": 8, "channels": [8, 16, 32], "batch_size": 2},
        "finetune_every": 0,
    }
    r = srv.api("POST", "/projects", json=settings)
    assert r.status_code == 201, r.text
    r = srv.api(
        "POST", "/users", json={"name": f"{who}-{VOLS}", "role": "annotator", "project": VOLS}
    )
    assert r.status_code == 201, r.text
    srv.tokens[who] = r.json()["token"]["token"]
    for i, split in enumerate(["train"] * 3 + ["val"]):
        image, mask = volume_bytes(10 + i)
        r = srv.api(
            "POST",
            f"/projects/{VOLS}/reference",
            files={"image": (f"case{i}.nii.gz", image), "mask": ("m.nii.gz", mask)},
            data={"split": split},
        )
        assert r.status_code == 201, r.text
    job = srv.api("POST", f"/projects/{VOLS}/jobs", json={"kind": "train"}).json()
    done = srv.wait_job(job["id"], timeout=600, project=VOLS)
    assert done["state"] == "succeeded", done


def stage_point(s: Session, plane: str, ix: float, iy: float) -> tuple[float, float]:
    """Page coordinates of image point (ix, iy) (column, row) of ``plane``'s stage."""
    stage = s.page.get_by_test_id(f"stage-{plane}")
    box = stage.bounding_box()
    assert box is not None
    scale, ox, oy = (float(v) for v in (stage.get_attribute("data-view") or "").split())
    aspect = float(stage.get_attribute("data-aspect") or 1)
    return box["x"] + ox + ix * scale, box["y"] + oy + iy * scale * aspect


def page_slice(s: Session, plane: str) -> int:
    """The slice ``plane``'s stage shows."""
    return int(s.page.get_by_test_id(f"stage-{plane}").get_attribute("data-slice") or -1)


def wait_value(read: Any, want: Any, timeout: float = 5.0) -> Any:
    """Poll ``read()`` until it returns ``want`` (or the timeout); the last value."""
    end = time.monotonic() + timeout
    got = read()
    while got != want and time.monotonic() < end:
        time.sleep(0.05)
        got = read()
    return got
