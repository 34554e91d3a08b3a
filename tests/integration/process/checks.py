"""Integrity checks of a server data folder (run on a stopped server)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import func, select

from medloop.storage.blobs import BlobStore
from medloop.storage.db import make_engine, session_factory
from medloop.storage.models import (
    Analysis,
    Correction,
    Job,
    ModelFile,
    ModelVersion,
    ReferencePair,
)
from medloop.storage.models import Image as ImageRow

__all__ = ["check_blobs", "check_registry", "count_rows", "png", "production_on_disk"]


def png(seed: int, size: int = 64) -> bytes:
    """A distinct gray PNG (random discs on noise) for every ``seed``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    img = rng.normal(60, 12, (size, size))
    for _ in range(3):
        cy, cx = rng.integers(8, size - 8, 2).tolist()
        r = int(rng.integers(4, 8))
        img[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] += 130
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _sessions(data_dir: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{data_dir / 'medloop.db'}")
    return engine, session_factory(engine)


def check_blobs(data_dir: Path) -> dict[str, int]:
    """Every image, reference mask, analysis and correction row has its blob, sha256 verified."""
    store = BlobStore(data_dir / "blobs")
    engine, sessions = _sessions(data_dir)
    counts: dict[str, int] = {}
    try:
        with sessions() as s:
            pairs: list[tuple[str, str, str]] = []
            for row in s.scalars(select(ImageRow)):
                pairs.append(("image", row.blob_key, row.sha256))
            for ref in s.scalars(select(ReferencePair)):
                pairs.append(("reference", ref.mask_blob_key, ref.mask_sha256))
            for a in s.scalars(select(Analysis)):
                pairs.append(("analysis", a.label_blob_key, a.label_sha256))
            for c in s.scalars(select(Correction)):
                pairs.append(("correction", c.mask_blob_key, c.mask_sha256))
    finally:
        engine.dispose()
    for kind, key, sha in pairs:
        store.open_verified(key, sha)  # raises BlobCorrupt if missing or altered
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def count_rows(data_dir: Path) -> dict[str, int]:
    engine, sessions = _sessions(data_dir)
    try:
        with sessions() as s:
            return {
                name: int(s.scalar(select(func.count()).select_from(model)) or 0)
                for name, model in [
                    ("images", ImageRow),
                    ("analyses", Analysis),
                    ("corrections", Correction),
                    ("jobs", Job),
                ]
            }
    finally:
        engine.dispose()


def job_state_on_disk(data_dir: Path, job_id: str) -> str:
    engine, sessions = _sessions(data_dir)
    try:
        with sessions() as s:
            job = s.get(Job, job_id)
            assert job is not None
            return job.state
    finally:
        engine.dispose()


def production_on_disk(data_dir: Path, project_id: str) -> str | None:
    engine, sessions = _sessions(data_dir)
    try:
        with sessions() as s:
            return s.scalars(
                select(ModelVersion.name).where(
                    ModelVersion.project_id == project_id, ModelVersion.status == "production"
                )
            ).one_or_none()
    finally:
        engine.dispose()


def check_registry(data_dir: Path) -> list[str]:
    """Every recorded version is whole: its weights and ONNX blobs verify, its JSON parses,
    and at most one version per project is in production."""
    store = BlobStore(data_dir / "blobs")
    engine, sessions = _sessions(data_dir)
    names = []
    try:
        with sessions() as s:
            versions = list(s.scalars(select(ModelVersion).order_by(ModelVersion.number)))
            for v in versions:
                files = {
                    f.name: f
                    for f in s.scalars(select(ModelFile).where(ModelFile.version_id == v.id))
                }
                expected = {"weights.pt", "model.onnx", "locked_scores.json"}
                assert set(files) == expected, f"{v.name}: {sorted(files)}"
                for f in files.values():
                    store.open_verified(f.blob_key, f.sha256)
                assert v.manifest and v.lineage and isinstance(v.metrics, dict)
                names.append(v.name)
            production = [v.project_id for v in versions if v.status == "production"]
            assert len(production) == len(set(production)), "two versions in production"
    finally:
        engine.dispose()
    return names
