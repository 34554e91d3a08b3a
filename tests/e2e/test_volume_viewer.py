"""The volume viewer in a real browser: a volume analysis opens in three planes; the wheel
and the arrow keys change the slice; a window preset and the window tool's drag apply; the
main plane switches; a click in a small plane moves the crosshair (the other planes'
slices); a brush stroke on a coronal slice is submitted, and the stored correction differs
from the prediction in exactly the voxels the stroke covers. Interpolation between two
edited axial slices fills the slices between them (and only those).

A server of its own, with one small 3D project (see :mod:`.volumes`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from .conftest import Session, signed_in_tabs
from .helpers import capsule
from .server import LiveServer, start_bare_server
from .volumes import (
    NX,
    NY,
    NZ,
    SHAPE,
    VOLS,
    build_volume_project,
    nifti,
    page_slice,
    stage_point,
    volume_bytes,
    wait_value,
)


@pytest.fixture(scope="module")
def vol_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = start_bare_server(tmp_path_factory.mktemp("e2e-volumes"))
    try:
        build_volume_project(srv)
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def tabs(browser: Any, vol_server: LiveServer) -> Iterator[Callable[[str], Session]]:
    yield from signed_in_tabs(browser, vol_server, timeout_ms=30_000)


def _analyse(srv: LiveServer, seed: int) -> tuple[str, np.ndarray]:
    image, _ = volume_bytes(seed)
    r = srv.api(
        "POST", f"/projects/{VOLS}/analyses", "annotator", files={"file": ("ct.nii.gz", image)}
    )
    assert r.status_code == 201, r.text
    analysis = r.json()
    assert analysis["volume"] is True
    pred = nifti(srv.api("GET", f"/projects/{VOLS}/analyses/{analysis['id']}/mask").content)
    assert pred.shape == SHAPE
    return analysis["id"], pred


def _open(s: Session, analysis_id: str) -> None:
    s.go(f"#/viewer/{analysis_id}")
    s.page.locator("[data-testid=volume-grid][data-ready='1']").wait_for()


def _drag(s: Session, plane: str, p0: tuple[float, float], p1: tuple[float, float]) -> None:
    s.page.mouse.move(*stage_point(s, plane, *p0))
    s.page.mouse.down()
    s.page.mouse.move(*stage_point(s, plane, *p1), steps=12)
    s.page.mouse.up()


def _submit(s: Session) -> None:
    s.page.get_by_test_id("submit").click()
    s.page.get_by_test_id("result").wait_for(state="visible")


def test_scroll_crosshair_and_a_coronal_stroke_stored_exactly(
    vol_server: LiveServer, tabs: Callable[[str], Session]
) -> None:
    analysis_id, pred = _analyse(vol_server, 21)
    s = tabs("annotator")
    _open(s, analysis_id)
    page = s.page
    assert [page_slice(s, p) for p in ("axial", "coronal", "sagittal")] == [
        NZ // 2,
        NY // 2,
        NX // 2,
    ]
    assert page.get_by_test_id("volume-shape").text_content() == f"{NX} × {NY} × {NZ} voxels"
    # the wheel over the axial plane, then the keys: one slice per notch or press
    page.mouse.move(*stage_point(s, "axial", NX / 2, NY / 2))
    page.mouse.wheel(0, 100)
    assert wait_value(lambda: page_slice(s, "axial"), NZ // 2 + 1) == NZ // 2 + 1
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    assert page_slice(s, "axial") == NZ // 2 + 2
    assert page.get_by_test_id("slice-index-axial").text_content() == f"{NZ // 2 + 3} / {NZ}"
    # a window preset reaches every plane
    page.get_by_test_id("wl-preset-bone").click()
    assert page.get_by_test_id("wl-center").input_value() == "400"
    assert page.get_by_test_id("volume-grid").get_attribute("data-window") == "400 1800"
    # the window tool: 100 px to the right widens the window by half its width (200 px: 1x)
    page.keyboard.press("w")
    x0, y0 = (round(v) for v in stage_point(s, "axial", NX / 2, NY / 2))
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + 100, y0, steps=5)
    page.mouse.up()
    assert page.get_by_test_id("volume-grid").get_attribute("data-window") == "400 2700"
    assert page.get_by_test_id("wl-width").input_value() == "2700"
    # coronal becomes the main plane; a click in the sagittal plane moves the crosshair:
    # column c of a sagittal slice is y = NY-1-c (the coronal slice), row r is z = NZ-1-r
    page.get_by_test_id("main-plane-coronal").click()
    assert page.locator(".pane[data-plane=coronal]").get_attribute("data-slot") == "0"
    page.keyboard.press("x")
    col, row = 20, 6
    page.wait_for_timeout(300)  # the layout settles (the stages refit)
    page.mouse.click(*stage_point(s, "sagittal", col + 0.5, row + 0.5))
    assert wait_value(lambda: page_slice(s, "coronal"), NY - 1 - col) == NY - 1 - col
    assert page_slice(s, "axial") == NZ - 1 - row
    assert page_slice(s, "sagittal") == NX // 2
    y = NY - 1 - col
    # a brush stroke (size 5) on that coronal slice, with label 1; submit
    page.keyboard.press("b")
    page.keyboard.press("1")
    page.keyboard.press("[")
    assert page.get_by_test_id("brush-size").input_value() == "5"
    stroke = ((3.5, 9.5), (19.5, 9.5))  # (column, row) of the coronal slice
    _drag(s, "coronal", *stroke)
    s.shot("volume-viewer")
    _submit(s)
    corr = vol_server.api("GET", f"/projects/{VOLS}/corrections").json()["items"][-1]
    assert corr["analysis_id"] == analysis_id
    stored = nifti(vol_server.api("GET", f"/projects/{VOLS}/corrections/{corr['id']}/mask").content)
    # the stroke's pixels (rows z = NZ-1-r, columns x = NX-1-c) as voxels of slice y
    painted = np.zeros(SHAPE, bool)
    painted[:, y, :] = capsule((NZ, NX), *stroke, r=2.5)[::-1, ::-1].T
    expected = np.where(painted, 1, pred)
    changed = np.argwhere(stored != pred)
    assert changed.size, "the stored correction equals the prediction"
    assert np.array_equal(stored, expected), (
        f"voxels off the stroke: {np.argwhere(stored != expected)[:10].tolist()}"
    )


def test_interpolation_fills_the_slices_between_two_edited_ones(
    vol_server: LiveServer, tabs: Callable[[str], Session]
) -> None:
    analysis_id, pred = _analyse(vol_server, 22)
    s = tabs("annotator")
    _open(s, analysis_id)
    page = s.page
    page.get_by_test_id("interpolate").click()  # nothing edited yet: said so, nothing sent
    page.locator(".toast", has_text="Edit at least two axial slices").wait_for()
    for k in (4, 10):
        page.get_by_test_id("slice-axial").fill(str(k))
        assert wait_value(lambda: page_slice(s, "axial"), k) == k
        page.keyboard.press("l")
        for p in ((4.0, 4.0), (14.0, 4.0), (14.0, 14.0), (4.0, 14.0)):
            page.mouse.click(*stage_point(s, "axial", *p))
        page.keyboard.press("Enter")
    with page.expect_response(lambda r: r.url.endswith("/interpolate")) as info:
        page.get_by_test_id("interpolate").click()
    assert info.value.status == 200
    assert info.value.headers["x-slice-indices"] == "5,6,7,8,9"
    page.locator(".toast", has_text="Interpolated 5 slices").wait_for()
    _submit(s)
    corr = vol_server.api("GET", f"/projects/{VOLS}/corrections").json()["items"][-1]
    stored = nifti(vol_server.api("GET", f"/projects/{VOLS}/corrections/{corr['id']}/mask").content)
    # the square (rows 4..13, columns 4..13 of the axial slices: y = NY-1-r, x = NX-1-c) is
    # labelled on the edited slices and every slice between; the other slices are untouched
    square = np.zeros((NX, NY), bool)
    square[NX - 14 : NX - 4, NY - 14 : NY - 4] = True
    for z in range(4, 11):
        assert (stored[:, :, z][square] == 1).all(), f"slice {z}: the square is not filled"
    outside = [z for z in range(NZ) if not 4 <= z <= 10]
    assert np.array_equal(stored[:, :, outside], pred[:, :, outside])


def test_a_viewer_browses_the_planes_without_tools(
    vol_server: LiveServer, tabs: Callable[[str], Session]
) -> None:
    analysis_id, _ = _analyse(vol_server, 23)
    user = {"name": f"viewer-{VOLS}", "role": "viewer", "project": VOLS}
    r = vol_server.api("POST", "/users", json=user)
    assert r.status_code == 201, r.text
    vol_server.tokens["viewer"] = r.json()["token"]["token"]
    s = tabs("viewer")
    _open(s, analysis_id)
    page = s.page
    assert page.get_by_test_id("submit").count() == 0
    assert page.get_by_test_id("tool-brush").count() == 0
    assert page.get_by_test_id("tool-crosshair").get_attribute("aria-pressed") == "true"
    # a click in the large (axial) plane: column c is x = NX-1-c, row r is y = NY-1-r
    page.mouse.click(*stage_point(s, "axial", 5.5, 9.5))
    assert wait_value(lambda: page_slice(s, "sagittal"), NX - 1 - 5) == NX - 1 - 5
    assert page_slice(s, "coronal") == NY - 1 - 9
    page.keyboard.press("PageUp")
    assert page_slice(s, "axial") == NZ // 2 - 10


def test_a_version_without_clicks_turns_the_click_tool_off(
    vol_server: LiveServer, tabs: Callable[[str], Session]
) -> None:
    analysis_id, _ = _analyse(vol_server, 24)
    s = tabs("annotator")
    _open(s, analysis_id)
    page = s.page
    page.keyboard.press("c")
    assert page.get_by_test_id("tool-clicks").get_attribute("aria-pressed") == "true"
    page.get_by_test_id("clicks-panel").wait_for()
    # a click in a small plane is a point too: column c of a sagittal slice is y = NY-1-c,
    # row r is z = NZ-1-r; the slice is x
    is_refine = lambda q: q.url.endswith("/refine")  # noqa: E731
    with page.expect_request(is_refine) as sent, page.expect_response(is_refine) as info:
        page.mouse.click(*stage_point(s, "sagittal", 10.5, 6.5))
    point = {"x": NX // 2, "y": NY - 1 - 10, "z": NZ - 1 - 6, "label": 1, "positive": True}
    assert sent.value.post_data_json == {"clicks": [point], "reset": True}
    assert info.value.status == 409
    page.locator(".toast-error", has_text="not trained for clicks").wait_for()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=tool-clicks]').disabled"
        " && document.querySelector('[data-testid=tool-brush]').getAttribute('aria-pressed') === 'true'"
    )
    assert page.get_by_test_id("click-item").count() == 0
    page.keyboard.press("c")  # stays off
    assert page.get_by_test_id("tool-clicks").get_attribute("aria-pressed") == "false"
