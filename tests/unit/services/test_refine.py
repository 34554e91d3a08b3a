"""Correcting with clicks: the interaction cache (TTL, LRU, accumulation, reset) and the
refine service with a tiny click-guided model; nothing reaches the database."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from medloop.domain.clicks import MAX_CLICKS, Box, Click, Guidance
from medloop.domain.labels import LabelSet
from medloop.domain.model import GuidanceSpec, ModelManifest, NetworkSpec, PreprocessSpec
from medloop.domain.records import ProjectRecord
from medloop.errors import ConflictError, GuidanceError, NotFoundError
from medloop.ml.inference import Predictor
from medloop.ml.network import build_network
from medloop.ml.trainer import TrainSpec, train
from medloop.services.analyses import Analyses
from medloop.services.images import Images
from medloop.services.refine import Interaction, Refinements, SessionCache
from medloop.services.uploads import UploadLimits
from medloop.storage import BlobStore, Database
from medloop.storage import repositories as repo

from ..ml.test_guidance import _discs
from ..storage.dbfixtures import settings_of

SPEC = GuidanceSpec(sigma=2.0)
LABELS = LabelSet.from_names(["nucleus"])
YY, XX = np.mgrid[:40, :40]
DISC = (YY - 14) ** 2 + (XX - 26) ** 2 <= 25  # centre (row 14, col 26)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _item(tag: str) -> Interaction:
    return Interaction(tag, "image", 0)


def test_the_cache_keeps_an_interaction_until_its_ttl_after_the_last_use() -> None:
    clock = Clock()
    cache = SessionCache(ttl_s=300, max_size=4, clock=clock)
    first = cache.get(("p", "a", "u"), lambda: _item("v1"))
    clock.now = 299
    assert cache.get(("p", "a", "u"), lambda: _item("new")) is first  # and used again now
    clock.now = 598
    assert cache.get(("p", "a", "u"), lambda: _item("new")) is first
    assert cache.get(("p", "a", "other user"), lambda: _item("v1")) is not first
    clock.now = 598 + 300
    assert len(cache) == 0
    assert cache.get(("p", "a", "u"), lambda: _item("new")).model_version == "new"


def test_the_cache_is_bounded_least_recently_used_out_first() -> None:
    cache = SessionCache(ttl_s=300, max_size=2, clock=Clock())
    a = cache.get(("a",), lambda: _item("a"))
    cache.get(("b",), lambda: _item("b"))
    assert cache.get(("a",), lambda: _item("new")) is a  # a is now the most recent
    cache.get(("c",), lambda: _item("c"))  # b goes
    assert len(cache) == 2
    assert cache.get(("a",), lambda: _item("new")) is a
    assert cache.get(("b",), lambda: _item("new")).model_version == "new"


def test_the_cache_is_bounded_in_bytes_but_keeps_the_one_in_use() -> None:
    def held(tag: str, mib: int) -> Interaction:
        item = _item(tag)
        item.labels = np.zeros(mib << 20, np.uint8)
        return item

    cache = SessionCache(ttl_s=300, max_size=10, clock=Clock(), max_bytes=3 << 20)
    a = cache.get(("a",), lambda: held("a", 1))
    b = cache.get(("b",), lambda: held("b", 1))
    assert len(cache) == 2 and a.nbytes() == 1 << 20
    cache.get(("c",), lambda: held("c", 2))  # 4 MiB > 3: a (least recently used) goes
    assert cache.find(("a",)) is None and cache.find(("b",)) is b and len(cache) == 2
    big = cache.get(("d",), lambda: held("d", 5))  # over the budget alone: kept, others go
    assert len(cache) == 1 and cache.find(("d",)) is big


@pytest.fixture(scope="module")
def interactive() -> Predictor:
    manifest = ModelManifest(
        NetworkSpec(1 + SPEC.channels(1), 2, (8, 16, 32), num_res_units=1),
        PreprocessSpec(),
        LABELS,
        (32, 32),
        guidance=SPEC,
    )
    spec = TrainSpec(steps=80, batch_size=4, lr=3e-3, warmup_steps=3, val_every=0, device="cpu")
    return Predictor(manifest, train(manifest, _discs(0, 8), spec).state_dict, "cpu")


class FakeModels:
    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.asked: list[str | None] = []

    def resolve(self, project_id: str, version: str | None = None) -> tuple[str, Predictor]:
        self.asked.append(version)
        return version or "v0002", self.predictor

    def request_thread_init(self) -> None:
        pass


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


class World:
    def __init__(self, database: Database, tmp: Path, predictor: Predictor) -> None:
        self.db, self.blobs = database, BlobStore(tmp / "blobs")
        self.models = FakeModels(predictor)
        images = Images(database, self.blobs, UploadLimits(), None)  # type: ignore[arg-type]
        self.analyses = Analyses(database, self.blobs, images, self.models, threads=2)  # type: ignore[arg-type]
        self.clock = Clock()
        self.service = Refinements(
            database,
            self.blobs,
            self.analyses,
            self.models,  # type: ignore[arg-type]
            SessionCache(300, 8, self.clock),
        )
        with database.write() as s:
            self.project: ProjectRecord = repo.create_project(s, "clicks", settings_of())
        pixels = np.random.default_rng(3).normal(60, 12, (40, 40)) + DISC * 25.0
        stored = self.blobs.put_bytes(_png(np.clip(pixels, 0, 255).astype(np.uint8)))
        empty = self.blobs.put_bytes(_png(np.zeros((40, 40), np.uint8)))  # the disc missed
        with database.write() as s:
            self.image, _ = repo.create_image(
                s,
                project_id=self.project.id,
                sha256=stored.sha256,
                blob_key=stored.key,
                filename="i.png",
                content_type="image/png",
                width=40,
                height=40,
                channels=1,
            )
            self.analysis = repo.create_analysis(
                s,
                project_id=self.project.id,
                image_id=self.image.id,
                model_version="v0001",
                label_blob_key=empty.key,
                label_sha256=empty.sha256,
                uncertainty=0.1,
                measurements=[],
            ).id

    def refine(self, *clicks: Click, reset: bool = False, user: str = "u1", **kw: Any) -> Any:
        guidance = Guidance(tuple(clicks), kw.get("box"))
        future = self.service.refine(self.project, self.analysis, user, guidance, reset)
        return future.result(timeout=60)

    def rows(self) -> tuple[int, int]:
        with self.db.read() as s:
            return (
                len(repo.list_corrections(s, self.project.id)),
                len(repo.list_analyses(s, self.project.id, limit=100, offset=0)),
            )


@pytest.fixture
def world(database: Database, tmp_path: Path, interactive: Predictor) -> Iterator[World]:
    w = World(database, tmp_path, interactive)
    yield w
    w.analyses.close()


def _label_map(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def test_clicks_accumulate_move_the_mask_toward_them_and_reset_starts_over(world: World) -> None:
    rows = world.rows()
    before = world.refine()  # no clicks yet: the analysis as it was
    assert before.clicks == 0 and before.changed_pixels == 0
    assert [(d.label, d.name, d.dice) for d in before.dice] == [(1, "nucleus", 1.0)]
    first = world.refine(Click((14.0, 26.0), 1))
    labels = _label_map(first.png)
    assert labels.shape == (40, 40) and first.model_version == "v0001"  # the analysis's own
    assert labels[14, 26] == 1 and labels[DISC].mean() > 0.5  # the missed disc, found
    assert first.changed_pixels == int((labels > 0).sum()) > 0 and first.dice[0].dice == 0.0
    second = world.refine(Click((35.0, 5.0), 1, positive=False))
    assert second.clicks == 2  # accumulated
    third = world.refine(box=Box((8.0, 20.0), (20.0, 32.0), 1))
    assert third.clicks == 2 and third.box == Box((8.0, 20.0), (20.0, 32.0), 1)
    other = world.refine(user="u2")  # another clinician's interaction is their own
    assert other.clicks == 0 and other.box is None
    again = world.refine(reset=True)
    assert again.clicks == 0 and again.box is None and again.changed_pixels == 0
    assert world.models.asked == ["v0001", "v0001"]  # each interaction prepared once
    assert world.rows() == rows  # a refine stores nothing


def test_two_clinicians_refining_one_analysis_at_once_keep_their_own_clicks(
    world: World,
) -> None:
    mine = [Click((14.0, 26.0), 1), Click((12.0, 24.0), 1), Click((16.0, 28.0), 1)]
    theirs = [Click((35.0, 5.0), 1, positive=False), Click((30.0, 8.0), 1), Click((5.0, 5.0), 1)]
    futures = []
    for a, b in zip(mine, theirs, strict=True):  # interleaved, none awaited: 2 threads run them
        futures.append(world.service.refine(world.project, world.analysis, "u1", Guidance((a,))))
        futures.append(world.service.refine(world.project, world.analysis, "u2", Guidance((b,))))
    assert sorted(f.result(timeout=60).clicks for f in futures) == [1, 1, 2, 2, 3, 3]
    for user, clicks, alone in [("u1", mine, "solo1"), ("u2", theirs, "solo2")]:
        final = world.refine(user=user)  # no new click: the interaction as it stands
        assert final.clicks == 3  # no click lost, none taken from the other clinician
        for click in clicks:  # the same clicks, one at a time, with nobody else at work
            replay = world.refine(click, user=alone)
        assert np.array_equal(_label_map(final.png), _label_map(replay.png))
        stored = world.service.labels(world.project, world.analysis, user)
        assert np.array_equal(_label_map(stored.data), _label_map(final.png))
    assert not np.array_equal(
        _label_map(world.refine(user="u1").png), _label_map(world.refine(user="u2").png)
    )


def test_bad_clicks_are_refused_and_leave_the_interaction_as_it_was(world: World) -> None:
    world.refine(Click((14.0, 26.0), 1))
    for clicks, message in [
        ((Click((14.0, 40.0), 1),), "outside the image"),
        ((Click((14.0, float("nan")), 1),), "not a number"),
        ((Click((14.0, 26.0), 2),), "label 2"),
        ((Click((1.0, 2.0, 3.0), 1),), "2 coordinates"),
        (tuple(Click((1.0, 1.0), 1) for _ in range(MAX_CLICKS)), f"at most {MAX_CLICKS}"),
    ]:
        with pytest.raises(GuidanceError, match=message):
            world.refine(*clicks)
    assert world.refine().clicks == 1


def test_the_interaction_expires(world: World) -> None:
    world.refine(Click((14.0, 26.0), 1))
    world.clock.now = 301
    assert world.refine().clicks == 0 and world.models.asked == ["v0001", "v0001"]


def test_a_version_without_clicks_and_an_unknown_analysis(world: World) -> None:
    plain = ModelManifest(NetworkSpec(1, 2, (8, 16)), PreprocessSpec(), LABELS, (32, 32))
    world.models.predictor = Predictor(plain, build_network(plain.network).state_dict(), "cpu")
    with pytest.raises(ConflictError, match=r"training.interactive=true"):
        world.refine(Click((14.0, 26.0), 1))
    future = world.service.refine(world.project, "0" * 32, "u1", Guidance(), False)
    with pytest.raises(NotFoundError):
        future.result(timeout=60)


def test_segment_an_image_from_a_click(world: World) -> None:
    run = world.service.segment(
        world.project, world.image.id, "u1", Guidance((Click((14.0, 26.0), 1),))
    )
    out = run.result(timeout=60)
    labels = _label_map(out.png)
    assert labels[14, 26] == 1 and out.dice is None and out.model_version == "v0002"
    with pytest.raises(GuidanceError, match="clicks or a box"):
        world.service.segment(world.project, world.image.id, "u1", Guidance()).result(timeout=60)
    with pytest.raises(GuidanceError, match=r"frames 0\.\.0"):
        world.service.segment(
            world.project, world.image.id, "u1", Guidance((Click((1.0, 1.0), 1),)), frame=1
        ).result(timeout=60)


def test_onnx_runtime_refines_windows_of_any_size_as_torch_does(interactive: Predictor) -> None:
    """On a CPU the model pool serves ONNX Runtime predictors: refine works with them."""
    pytest.importorskip("onnxruntime")
    from medloop.domain.image import Image as Pixels
    from medloop.ml.interactive import RefineSession
    from medloop.ml.onnx_runtime import export_onnx

    manifest = interactive.manifest
    onnx = Predictor.from_onnx(manifest, export_onnx(manifest, interactive.model.state_dict()), 1)
    image = Pixels(pixels=np.random.default_rng(0).integers(0, 255, (70, 50, 1)).astype(np.uint8))
    start = np.zeros((70, 50), np.uint8)
    windows = set()
    for points in [[(5.0, 5.0)], [(5.0, 5.0), (40.0, 30.0)], [(10.0, 45.0), (66.0, 2.0)]]:
        guidance = Guidance(tuple(Click(p, 1) for p in points))
        a = RefineSession(interactive, image, start).refine(guidance)
        b = RefineSession(onnx, image, start).refine(guidance)
        windows.add(tuple((w.start, w.stop) for w in a.window))
        assert a.window == b.window
        assert np.abs(a.prediction.probabilities - b.prediction.probabilities).max() < 1e-4
    assert len(windows) == 3  # three window sizes


def test_a_frame_of_a_multi_frame_dicom_is_refined_on_its_own_pixels(world: World) -> None:
    """The analysis of frame 2 refines frame 2: the pixels decoded are that frame's."""
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    base = ds.pixel_array
    ds.NumberOfFrames = 3
    ds.PixelData = np.stack([np.roll(base, 7 * k, axis=0) for k in range(3)]).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    stored = world.blobs.put_bytes(buf.getvalue())
    empty = world.blobs.put_bytes(_png(np.zeros(base.shape, np.uint8)))
    with world.db.write() as s:
        image, _ = repo.create_image(
            s,
            project_id=world.project.id,
            sha256=stored.sha256,
            blob_key=stored.key,
            filename="mf.dcm",
            content_type="application/dicom",
            width=base.shape[1],
            height=base.shape[0],
            channels=1,
            frames=3,
        )
        analysis = repo.create_analysis(
            s,
            project_id=world.project.id,
            image_id=image.id,
            model_version="v0001",
            label_blob_key=empty.key,
            label_sha256=empty.sha256,
            uncertainty=0.1,
            measurements=[],
            frame=2,
        ).id
    decoded: list[tuple[int, np.ndarray]] = []
    images = world.analyses.images
    real = images.pixels

    def pixels(record: Any, frame: int = 0) -> Any:
        out = real(record, frame)
        decoded.append((frame, out.pixels))
        return out

    images.pixels = pixels  # type: ignore[method-assign]
    guidance = Guidance((Click((60.0, 64.0), 1),))
    out = world.service.refine(world.project, analysis, "u1", guidance).result(timeout=60)
    assert (out.frame, out.shape, out.clicks) == (2, (128, 128), 1)
    ((frame, seen),) = decoded
    hounsfield = np.roll(base, 14, axis=0) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert frame == 2 and np.array_equal(np.squeeze(seen), hounsfield)
