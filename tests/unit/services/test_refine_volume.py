"""Clicks on volumes: the 3D window around the clicks, the block-by-block label volume and
its running Dice, and the refine service on a stored NIfTI volume with a tiny 3D model."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from medloop.domain.clicks import Box, Click, Guidance
from medloop.domain.image import Image
from medloop.domain.labels import LabelSet
from medloop.domain.model import GuidanceSpec, ModelManifest, NetworkSpec, PreprocessSpec
from medloop.domain.records import ProjectRecord
from medloop.errors import GuidanceError, NotFoundError
from medloop.io.volumes import decode_label_volume, decode_volume, encode_label_volume
from medloop.ml import interactive
from medloop.ml.guidance import encode
from medloop.ml.inference import Predictor
from medloop.ml.interactive import (
    CONTEXT,
    RefineSession,
    answered_window,
    clip_box,
    guidance_window,
    pair_corners,
    paired_window,
)
from medloop.ml.network import build_network
from medloop.services.analyses import Analyses
from medloop.services.images import Images
from medloop.services.refine import Refinements, SessionCache, label_dice
from medloop.services.refine_volume import VolumeLabels, changed_block
from medloop.services.uploads import UploadLimits
from medloop.storage import BlobStore, Database
from medloop.storage import repositories as repo

from ..storage.dbfixtures import settings_of
from .test_refine import FakeModels

SPEC = GuidanceSpec(sigma=2.0)
SHAPE = (40, 36, 24)


def test_the_window_holds_every_click_and_is_clipped_at_the_borders() -> None:
    grid, patch = (100, 90, 30), (16, 16, 16)
    clicks = (Click((1.0, 88.0, 29.0), 1), Click((20.0, 70.0, 2.0), 1, False))
    window = guidance_window(Guidance(clicks), grid, patch)
    for c in clicks:
        assert all(w.start <= v < w.stop for v, w in zip(c.index, window, strict=True))
    assert all(0 <= w.start < w.stop <= g for w, g in zip(window, grid, strict=True))
    assert window[2] == slice(0, 30)  # the whole axis: the clicks span it
    one = guidance_window(Guidance(clicks[:1]), grid, patch)
    assert one == (slice(0, 16), slice(74, 90), slice(14, 30))  # a patch, pushed inside
    assert guidance_window(Guidance(), (8, 8, 8), patch) == (slice(0, 8),) * 3


def test_the_answer_leaves_out_the_window_edges_inside_the_grid() -> None:
    grid, patch = (100, 90, 30), (16, 16, 16)
    margin = round(16 * CONTEXT)
    click = Click((50.0, 88.0, 10.0), 1)
    seen = guidance_window(Guidance((click,)), grid, patch)
    assert seen == (slice(42, 58), slice(74, 90), slice(2, 18))
    answered, inner = answered_window(seen, grid, patch)
    # Trimmed where the window lies inside the grid; kept at the grid's edge (axis 1).
    assert answered == (slice(42 + margin, 58 - margin), slice(74 + margin, 90), slice(6, 14))
    assert inner == (slice(margin, 16 - margin), slice(margin, 16), slice(4, 12))
    assert all(a.start <= v < a.stop for v, a in zip(click.index, answered, strict=True))
    assert answered_window(seen, grid, patch, Guidance((click,)))[0] == answered
    # Clicks near the seen window's sides: the answer reaches half the trim beyond each
    # (or to the seen window's side), and stays a window of the seen one.
    reach = margin // 2
    for clicks in [
        (Click((10.0, 20.0, 5.0), 1), Click((60.0, 45.0, 25.0), 2, False)),
        (Click((40.0, 30.0, 9.0), 1), Click((46.0, 36.0, 15.0), 1)),
    ]:
        seen = guidance_window(Guidance(clicks), grid, patch)
        answered, inner = answered_window(seen, grid, patch, Guidance(clicks))
        for c in clicks:
            for v, a, w in zip(c.index, answered, seen, strict=True):
                assert a.start <= v - reach or a.start == w.start
                assert v + 1 + reach <= a.stop or a.stop == w.stop
        trimmed, _ = answered_window(seen, grid, patch)
        assert trimmed != answered  # without the clicks the trim would cut into them
    for a, s, i in zip(answered, seen, inner, strict=True):
        assert s.start <= a.start < a.stop <= s.stop
        assert (i.start, i.stop) == (a.start - s.start, a.stop - s.start)
    # A grid that fits a patch is seen and answered whole.
    whole = guidance_window(Guidance((click,)), (12, 16, 9), patch)
    assert (
        answered_window(whole, (12, 16, 9), patch)[0]
        == whole
        == (slice(0, 12), slice(0, 16), slice(0, 9))
    )


def test_a_patch_sized_window_is_seen_twice_one_voxel_apart() -> None:
    grid, patch = (100, 90, 30), (16, 16, 16)
    seen = (slice(42, 58), slice(74, 90), slice(2, 18))  # a patch; axis 1 at the grid's end
    paired = paired_window(seen, grid, patch)
    assert paired == (slice(42, 59), slice(73, 90), slice(2, 19))
    assert pair_corners((17, 17, 17), patch) == ((slice(0, 16),) * 3, (slice(1, 17),) * 3)
    # Where the grid fits a patch, or the window is longer than a patch, one view.
    assert paired_window((slice(0, 12), slice(0, 16), slice(0, 9)), (12, 16, 9), patch) == (
        slice(0, 12),
        slice(0, 16),
        slice(0, 9),
    )
    wide = (slice(10, 40), slice(74, 90), slice(0, 30))
    assert paired_window(wide, grid, patch) == (slice(10, 40), slice(73, 90), slice(0, 30))
    full = slice(None)
    assert pair_corners((30, 17, 30), patch) == (
        (full, slice(0, 16), full),
        (full, slice(1, 17), full),
    )
    assert pair_corners((30, 16, 12), patch) is None


def _session(patch: tuple[int, ...]) -> tuple[RefineSession, list[tuple[int, ...]]]:
    """A session on a 40 x 36 x 24 volume with a tiny random model whose passes are logged."""
    manifest = ModelManifest(
        NetworkSpec(1 + SPEC.channels(1), 2, (4, 8), spatial_dims=3),
        PreprocessSpec(),
        LabelSet.from_names(["organ"]),
        patch,
        guidance=SPEC,
    )
    predictor = Predictor(manifest, build_network(manifest.network).state_dict(), "cpu")
    seen: list[tuple[int, ...]] = []
    forward = predictor.forward_prepared

    def logged(model: object, x: np.ndarray, *args: object) -> object:
        seen.append(tuple(x.shape[1:]))
        return forward(model, x, *args)  # type: ignore[arg-type]

    predictor.forward_prepared = logged  # type: ignore[method-assign,assignment]
    image = Image(np.random.default_rng(2).normal(100, 15, (*SHAPE, 1)).astype(np.float32))
    return RefineSession(predictor, image, np.zeros(SHAPE, np.uint8)), seen


def test_a_small_patch_refine_averages_two_views_and_a_large_one_runs_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    click = Guidance((Click((20.0, 18.0, 12.0), 1),))
    session, seen = _session((16, 16, 16))
    block = session.refine_block(click, click)
    assert seen == [(16, 16, 16), (16, 16, 16)]  # two passes of a patch over 17³ voxels
    # The answer: the 17-voxel window less its outer quarter of a patch on each side.
    assert all(w.stop - w.start == 17 - 2 * 4 for w in block.window)
    # The mean of the views: 1 where only the first sees, 2 where only the second, 1.5 both.
    passes = iter([torch.ones(2, 16, 16, 16), torch.full((2, 16, 16, 16), 2.0)])
    session.predictor.forward_prepared = lambda *a: next(passes)  # type: ignore[method-assign,assignment]
    mean = session._forward(np.zeros((9, 17, 17, 17), np.float32))
    assert mean.shape == (2, 17, 17, 17) and float(mean[0, 0, 0, 0]) == 1.0
    assert float(mean[1, 16, 16, 16]) == 2.0 and (mean[:, 1:16, 1:16, 1:16] == 1.5).all()
    monkeypatch.setattr(interactive, "PAIR_MAX_VOXELS", 16**3 - 1)  # a CT-sized patch's rule
    session, seen = _session((16, 16, 16))
    session.refine_block(click, click)
    assert seen == [(16, 16, 16)]


def test_a_box_is_cut_to_the_window_or_dropped() -> None:
    window = (slice(10, 20), slice(0, 8), slice(4, 12))
    box = Box((5.0, 2.0, 30.0), (15.0, 6.0, 8.0), 2)
    assert clip_box(box, window) == Box((10, 2.0, 8.0), (15.0, 6.0, 11), 2)
    assert clip_box(Box((0.0, 0.0, 0.0), (3.0, 3.0, 3.0)), window) is None


def test_3d_guidance_channels_peak_at_the_clicks() -> None:
    guidance = Guidance(
        (Click((3.0, 4.0, 5.0), 2), Click((7.0, 1.0, 2.0), 1, False)),
        Box((1.0, 1.0, 1.0), (2.0, 3.0, 4.0), 1),
    )
    previous = np.zeros((10, 8, 6), np.uint8)
    previous[0, 0, 0] = 2
    out = encode(guidance, previous, (10, 8, 6), 2, SPEC)
    assert out.shape == (SPEC.channels(2), 10, 8, 6)
    assert np.unravel_index(out[2].argmax(), (10, 8, 6)) == (3, 4, 5)  # label 2, positive
    assert np.unravel_index(out[1].argmax(), (10, 8, 6)) == (7, 1, 2)  # label 1, negative
    assert out[0].max() == 0 and out[3].max() == 0
    assert out[4].sum() == 2 * 3 * 4 and out[4, 1:3, 1:4, 1:5].all()  # box of label 1
    assert out[7, 0, 0, 0] == 1 and out[7].sum() == 1  # previous mask of label 2


def test_the_label_volume_keeps_dice_and_changes_as_a_full_scan_would() -> None:
    rng = np.random.default_rng(0)
    auto = rng.integers(0, 3, SHAPE).astype(np.uint8)
    labels = VolumeLabels(auto, 2)
    names = ["a", "b"]
    for _ in range(4):
        lo = [int(rng.integers(0, s - 6)) for s in SHAPE]
        window = tuple(slice(a, a + 6) for a in lo)
        before = labels.current.copy()
        block = rng.integers(0, 3, (6, 6, 6)).astype(np.uint8)
        moved = labels.paste(window, block)
        assert labels.dice(names) == label_dice(labels.current, auto, names)
        assert labels.changed == int((labels.current != auto).sum())
        pasted = changed_block(labels.current, moved)
        check = before.copy()
        region = tuple(slice(o, o + s) for o, s in zip(pasted.offset, pasted.shape, strict=True))
        check[region] = np.frombuffer(gzip.decompress(pasted.data), np.uint8).reshape(pasted.shape)
        assert np.array_equal(check, labels.current)
    current = labels.current.copy()
    moved = labels.reset()
    assert moved is not None and np.array_equal(labels.current, auto) and labels.changed == 0
    assert (current[moved] != auto[moved]).any() and (current == labels.current).sum() > 0
    assert all(d.dice == 1.0 for d in labels.dice(names))
    assert labels.reset() is None and changed_block(auto, None).shape == (0, 0, 0)


# -- the service on a stored volume ---------------------------------------------------------


def _nifti(arr: np.ndarray) -> bytes:
    img = nib.Nifti1Image(arr, np.diag([1.0, 1.0, 2.0, 1.0]))
    return gzip.compress(img.to_bytes())


class VolumeWorld:
    """A stored 40 x 36 x 24 volume and an analysis whose label volume holds one cube."""

    def __init__(self, database: Database, tmp: Path) -> None:
        manifest = ModelManifest(
            NetworkSpec(1 + SPEC.channels(1), 2, (4, 8), spatial_dims=3),
            PreprocessSpec(),
            LabelSet.from_names(["nucleus"]),
            (16, 16, 16),
            guidance=SPEC,
        )
        predictor = Predictor(manifest, build_network(manifest.network).state_dict(), "cpu")
        self.db, self.blobs = database, BlobStore(tmp / "blobs")
        self.models = FakeModels(predictor)
        images = Images(database, self.blobs, UploadLimits(), None)  # type: ignore[arg-type]
        self.analyses = Analyses(database, self.blobs, images, self.models, threads=1)  # type: ignore[arg-type]
        self.service = Refinements(database, self.blobs, self.analyses, self.models, SessionCache())  # type: ignore[arg-type]
        data = _nifti(np.random.default_rng(1).normal(100, 15, SHAPE).astype(np.float32))
        self.volume = decode_volume(data, name="v.nii.gz")
        self.auto = np.zeros(SHAPE, np.uint8)
        self.auto[30:36, 28:34, 16:22] = 1
        stored, label = (
            self.blobs.put_bytes(data),
            self.blobs.put_bytes(encode_label_volume(self.auto, self.volume)),
        )
        with database.write() as s:
            self.project: ProjectRecord = repo.create_project(s, "vol", settings_of())
            image, _ = repo.create_image(
                s,
                project_id=self.project.id,
                sha256=stored.sha256,
                blob_key=stored.key,
                filename="v.nii.gz",
                content_type="application/gzip",
                width=SHAPE[1],
                height=SHAPE[0],
                channels=1,
            )
            self.analysis = repo.create_analysis(
                s,
                project_id=self.project.id,
                image_id=image.id,
                model_version="v0001",
                label_blob_key=label.key,
                label_sha256=label.sha256,
                uncertainty=0.1,
                measurements=[],
            ).id

    def refine(self, *clicks: Click, reset: bool = False) -> object:
        guidance = Guidance(tuple(clicks))
        future = self.service.refine(self.project, self.analysis, "u1", guidance, reset)
        return future.result(timeout=120)


@pytest.fixture
def vworld(database: Database, tmp_path: Path) -> Iterator[VolumeWorld]:
    w = VolumeWorld(database, tmp_path)
    yield w
    w.analyses.close()


def test_a_volume_refine_infers_a_block_around_the_new_click_and_merges_it(
    vworld: VolumeWorld,
) -> None:
    held = vworld.auto.copy()
    first = vworld.refine(Click((5.0, 5.0, 4.0), 1))
    assert first.png is None and first.shape == SHAPE and first.clicks == 1  # type: ignore[attr-defined]
    for out in [first]:
        block = out.block  # type: ignore[attr-defined]
        where = tuple(slice(o, o + s) for o, s in zip(block.offset, block.shape, strict=True))
        if 0 not in block.shape:
            # Within the patch around the click, less its outer quarter inside the grid.
            # (the patch is seen one voxel longer, 0:17, as two views one voxel apart).
            assert all(w.stop <= 13 for w in where)
            held[where] = np.frombuffer(gzip.decompress(block.data), np.uint8).reshape(block.shape)
    assert (held[30:36, 28:34, 16:22] == 1).all()  # far from the click: the analysis's
    second = vworld.refine(Click((36.0, 32.0, 20.0), 1, False))
    block = second.block  # type: ignore[attr-defined]
    where = tuple(slice(o, o + s) for o, s in zip(block.offset, block.shape, strict=True))
    # Around the new click only: the patch (24:40, 20:36, 8:24), seen one voxel longer
    # (23:40, 19:36, 7:24), less its outer quarter.
    assert all(w.start >= lo for w, lo in zip(where, (27, 23, 11), strict=True))
    held[where] = np.frombuffer(gzip.decompress(block.data), np.uint8).reshape(block.shape)
    file = vworld.service.labels(vworld.project, vworld.analysis, "u1")
    current = decode_label_volume(file.data, name="r", num_foreground=1, image=vworld.volume)
    assert file.media_type == "application/gzip" and np.array_equal(current, held)
    assert second.changed_pixels == int((current != vworld.auto).sum())  # type: ignore[attr-defined]
    assert second.dice == label_dice(current, vworld.auto, ["nucleus"])  # type: ignore[attr-defined]
    assert second.clicks == 2  # type: ignore[attr-defined]
    again = vworld.refine(reset=True)
    assert again.clicks == 0 and again.changed_pixels == 0  # type: ignore[attr-defined]
    file = vworld.service.labels(vworld.project, vworld.analysis, "u1")
    assert np.array_equal(
        decode_label_volume(file.data, name="r", num_foreground=1, image=vworld.volume), vworld.auto
    )


@pytest.mark.parametrize(
    ("click", "message"),
    [
        (Click((5.0, 5.0), 1), "needs 3 coordinates"),
        (Click((5.0, 5.0, 24.0), 1), "outside the image"),
        (Click((5.0, float("nan"), 2.0), 1), "not a number"),
        (Click((5.0, 5.0, 2.0), 2), "label 2"),
    ],
)
def test_bad_volume_clicks_leave_the_interaction_as_it_was(
    vworld: VolumeWorld, click: Click, message: str
) -> None:
    vworld.refine(Click((5.0, 5.0, 4.0), 1))
    before = vworld.service.labels(vworld.project, vworld.analysis, "u1").data
    with pytest.raises(GuidanceError, match=message):
        vworld.refine(click)
    assert vworld.service.labels(vworld.project, vworld.analysis, "u1").data == before
    assert vworld.refine().clicks == 1  # type: ignore[attr-defined]
    with pytest.raises(NotFoundError, match="click first"):
        vworld.service.labels(vworld.project, vworld.analysis, "someone else")


def test_segment_a_volume_answers_the_block_around_the_click(vworld: VolumeWorld) -> None:
    with vworld.db.read() as s:
        image_id = repo.get_analysis(s, vworld.analysis, vworld.project.id).image_id
    guidance = Guidance((Click((20.0, 18.0, 12.0), 1),))
    out = vworld.service.segment(vworld.project, image_id, "u1", guidance).result(timeout=120)
    block = out.block
    assert out.dice is None and out.png is None and block is not None
    assert all(
        o <= c < o + s for o, s, c in zip(block.offset, block.shape, (20, 18, 12), strict=True)
    )
    assert np.frombuffer(gzip.decompress(block.data), np.uint8).size == int(np.prod(block.shape))
    assert io.BytesIO(block.data).read(2) == b"\x1f\x8b"
