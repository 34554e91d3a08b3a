"""The clinician's loop in a real browser: sign in, upload, review, correct, learn, roll back."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from .conftest import Session
from .helpers import capsule, red_pixels
from .server import LiveServer


def _png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def _test_image(server: LiveServer, i: int) -> Any:
    return server.dataset / "images" / f"case ({8 + i}).png"


def _prediction(server: LiveServer, analysis_id: str) -> np.ndarray:
    r = server.api("GET", server.project_path(f"/analyses/{analysis_id}/mask"))
    assert r.status_code == 200
    return _png(r.content)


def _stroke_row(pred: np.ndarray) -> int:
    """A row in the middle band with the least foreground: the stroke changes something there."""
    rows = list(range(16, pred.shape[0] - 16))
    return min(rows, key=lambda y: int((pred[y - 4 : y + 5] > 0).sum()))


def _drag(s: Session, points: list[tuple[float, float]]) -> None:
    """Press at the first image point, move through the others, release at the last."""
    stage = s.page.get_by_test_id("stage")
    box = stage.bounding_box()
    assert box is not None
    scale, ox, oy = (float(v) for v in (stage.get_attribute("data-view") or "").split())

    def screen(ix: float, iy: float) -> tuple[float, float]:
        return box["x"] + ox + ix * scale, box["y"] + oy + iy * scale

    s.page.mouse.move(*screen(*points[0]))
    s.page.mouse.down()
    for p in points[1:]:
        s.page.mouse.move(*screen(*p), steps=12)
    s.page.mouse.up()


def _paint(s: Session, x0: float, y0: float, x1: float, y1: float) -> None:
    """Drag the mouse from image point (x0, y0) to (x1, y1) with the current tool."""
    _drag(s, [(x0, y0), (x1, y1)])


def _red_pixels(s: Session) -> int:
    return red_pixels(s.page)


def _submit(s: Session) -> dict[str, str]:
    s.page.get_by_test_id("submit").click()
    result = s.page.get_by_test_id("result")
    result.get_by_test_id("agreement").wait_for()
    text = result.inner_text()
    assert "null" not in text and "undefined" not in text and "NaN" not in text, text
    return {
        "agreement": result.get_by_test_id("agreement").inner_text(),
        "until": result.get_by_test_id("until-finetune").inner_text(),
        "finetune": str(result.get_by_test_id("finetune-started").count()),
    }


def _correction_of(server: LiveServer, analysis_id: str) -> dict[str, Any]:
    items = server.api("GET", server.project_path("/corrections?limit=1000")).json()["items"]
    mine = [c for c in items if c["analysis_id"] == analysis_id]
    assert mine, f"no correction stored for {analysis_id}"
    out: dict[str, Any] = mine[-1]
    return out


def test_sign_in_upload_and_see_the_overlay(
    server: LiveServer, session: Callable[[str], Session]
) -> None:
    s = session("annotator")
    page = s.page
    assert page.get_by_test_id("user-role").text_content() == "annotator"
    page.get_by_test_id("nav-upload").click()
    # one file through the file chooser, two dropped at once on the drop zone
    page.get_by_test_id("file-input").set_input_files(str(_test_image(server, 0)))
    files = [
        (p.name, list(p.read_bytes())) for p in (_test_image(server, 1), _test_image(server, 2))
    ]
    page.evaluate(
        """files => {
          const dt = new DataTransfer();
          for (const [name, bytes] of files) dt.items.add(new File([new Uint8Array(bytes)], name, {type: 'image/png'}));
          const zone = document.querySelector('[data-testid=dropzone]');
          zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
          zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
        }""",
        files,
    )
    items = page.get_by_test_id("upload-item")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=upload-item]')]"
        ".filter(e => e.dataset.state === 'done').length === 3",
        timeout=30_000,
    )
    assert items.count() == 3
    assert "case (9).png" in page.get_by_test_id("upload-list").inner_text()
    s.shot("upload")

    items.first.get_by_test_id("open-analysis").click()
    page.locator("canvas[data-testid=stage][data-ready='1']").wait_for()
    page.wait_for_timeout(100)
    shown = _red_pixels(s)
    assert shown > 500, f"the overlay shows only {shown} label-coloured pixels"
    page.get_by_test_id("overlay-toggle").uncheck()
    page.wait_for_timeout(100)
    assert _red_pixels(s) < shown // 20
    page.get_by_test_id("overlay-toggle").check()
    page.get_by_test_id("style-outline").click()
    page.wait_for_timeout(100)
    outline = _red_pixels(s)
    assert 0 < outline < shown
    page.get_by_test_id("style-filled").click()
    assert page.get_by_test_id("measurements").inner_text().count("disc") >= 1

    # the worklist shows the new analyses with overlay thumbnails
    page.get_by_test_id("nav-worklist").click()
    queue = page.get_by_test_id("review-queue")
    queue.wait_for()
    assert queue.get_by_test_id("worklist-row").count() >= 3
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=review-queue] img.thumb')]"
        ".every(i => i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0)"
    )
    s.shot("worklist")


def test_a_stroke_is_stored_exactly_where_it_was_painted(
    server: LiveServer, session: Callable[[str], Session]
) -> None:
    analysis = server.analyze(_test_image(server, 3))
    pred = _prediction(server, analysis["id"])
    s = session("annotator")
    s.open_analysis(analysis["id"])
    page = s.page
    page.keyboard.press("b")
    page.keyboard.press("1")
    page.keyboard.press("[")  # size 6 -> 5
    assert page.get_by_test_id("brush-size").input_value() == "5"
    y = _stroke_row(pred) + 0.5
    stroke = ((6.5, y), (57.5, y))
    _paint(s, *stroke[0], *stroke[1])
    page.keyboard.press("z")  # undo ...
    page.keyboard.press("y")  # ... and redo the stroke
    # a second stroke, undone: it must not reach the server
    _paint(s, 10.5, 4.5, 50.5, 4.5)
    page.keyboard.press("Control+z")
    s.shot("viewer-correct")
    result = _submit(s)
    s.page.mouse.move(0, 0)
    s.shot("viewer")

    corr = _correction_of(server, analysis["id"])
    r = server.api("GET", server.project_path(f"/corrections/{corr['id']}/mask"))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    mask = _png(r.content)
    assert mask.shape == pred.shape
    changed = mask != pred
    assert changed.any(), "the stored correction equals the prediction"
    inside = capsule(pred.shape, *stroke, r=2.5 + 1.0)
    core = capsule(pred.shape, *stroke, r=2.5 - 1.0)
    assert not (changed & ~inside).any(), (
        f"pixels changed outside the stroke: {np.argwhere(changed & ~inside)[:10].tolist()}"
    )
    assert (mask[core] == 1).all(), "the stroke's core is not labelled 1"
    assert set(np.unique(mask).tolist()) <= {0, 1}
    assert result["agreement"] == f"{corr['dice_vs_prediction']:.3f}"
    assert result["until"].isdigit()
    # the effort record: both strokes (the undone one was work too), the time spent on them
    effort = corr["effort"]
    assert effort["brush_strokes"] == 2 and effort["clicks"] == 0, effort
    assert 0 <= effort["active_seconds"] < 600
    assert effort["dice_vs_prediction"] == corr["dice_vs_prediction"]


def test_corrections_trigger_a_finetune_and_a_new_version(
    server: LiveServer, session: Callable[[str], Session]
) -> None:
    s = session("annotator")
    page = s.page
    started = False
    for i in range(3):  # finetune_every is 2
        analysis = server.analyze(_test_image(server, 4 + i))
        pred = _prediction(server, analysis["id"])
        s.open_analysis(analysis["id"])
        page.keyboard.press("l")  # lasso: fill a square
        y = _stroke_row(pred)
        _drag(s, [(8, y - 4), (20, y - 4), (20, y + 4), (8, y + 4), (8, y - 4)])
        page.keyboard.press("b")
        _paint(s, 20, y, 50, y)
        result = _submit(s)
        if result["finetune"] == "1":
            started = True
            break
    assert started, "no fine-tune started after the corrections"
    page.get_by_test_id("finetune-started").get_by_role("link").click()
    jobs = page.get_by_test_id("jobs-table")
    jobs.wait_for()
    page.locator("[data-testid=job-row][data-kind=finetune]").first.wait_for()
    s.shot("jobs-running")
    page.locator("[data-testid=job-row][data-kind=finetune][data-state=succeeded]").wait_for(
        timeout=90_000
    )
    s.shot("jobs")
    page.get_by_test_id("nav-models").click()
    page.locator("[data-testid=model-row][data-version=v0002]").wait_for()
    assert page.get_by_test_id("dice-chart").locator("circle").count() >= 2


def _ensure_second_version(server: LiveServer) -> None:
    names = [
        v["version"] for v in server.api("GET", server.project_path("/models")).json()["items"]
    ]
    if "v0002" in names:
        return
    for i in range(2):
        a = server.analyze(_test_image(server, i))
        mask = (server.dataset / "masks" / f"case ({8 + i}).png").read_bytes()
        r = server.api(
            "POST",
            server.project_path(f"/analyses/{a['id']}/corrections"),
            "annotator",
            files={"file": ("m.png", mask)},
        )
        assert r.status_code == 201, r.text
        started = r.json().get("finetune_job_id")
    # The project fine-tunes every 2 corrections by itself; start one only if it did not.
    job = (
        started
        or server.api("POST", server.project_path("/jobs"), json={"kind": "finetune"}).json()["id"]
    )
    assert server.wait_job(job)["state"] == "succeeded"


def test_admin_promotes_and_rolls_back(
    server: LiveServer, session: Callable[[str], Session]
) -> None:
    _ensure_second_version(server)
    s = session("admin")
    page = s.page
    # a version the gate rejected is promoted only with a reason (a prompt)
    page.on("dialog", lambda d: d.accept("checked by hand") if d.type == "prompt" else d.accept())
    page.get_by_test_id("nav-models").click()
    row = page.locator("[data-testid=model-row][data-version=v0002]")
    row.wait_for()
    if row.get_attribute("data-status") != "production":
        page.get_by_test_id("promote-v0002").click()
        page.locator(
            "[data-testid=model-row][data-version=v0002][data-status=production]"
        ).wait_for()
    page.get_by_test_id("lineage-v0002").click()
    page.get_by_test_id("lineage-correction").first.wait_for()
    # the gate scored v0001 on the locked images once: when v0001 was made
    recalled = page.get_by_test_id("gate-recalled").inner_text()
    assert "v0001's scores on" in recalled and "recalled from its record" in recalled, recalled
    # effort per correction, by the version corrected
    page.locator("[data-testid=effort-row][data-version=v0001]").wait_for()
    assert page.get_by_test_id("production-version").inner_text().endswith("v0002")
    s.shot("models", full_page=True)

    page.get_by_test_id("rollback").click()
    page.locator("[data-testid=model-row][data-version=v0001][data-status=production]").wait_for()
    assert (
        page.locator("[data-testid=model-row][data-version=v0002]").get_attribute("data-status")
        == "retired"
    )
    project = server.api("GET", f"/projects/{server.project_id}").json()
    assert project["production_version"] == "v0001"
    s.shot("models-rolled-back", full_page=True)


def test_a_viewer_sees_no_correction_tools_and_no_model_actions(
    server: LiveServer, session: Callable[[str], Session]
) -> None:
    analysis = server.analyze(_test_image(server, 7))
    s = session("viewer")
    page = s.page
    assert page.get_by_test_id("user-role").text_content() == "viewer"
    assert page.get_by_test_id("nav-upload").count() == 0
    s.open_analysis(analysis["id"])
    page.get_by_test_id("measurements").wait_for()
    for testid in ("correction-tools", "submit", "tool-brush", "undo", "reset"):
        assert page.get_by_test_id(testid).count() == 0, testid
    assert _red_pixels(s) > 0
    # zoom with the wheel around the pointer, pan with a drag, F fits again
    stage = page.get_by_test_id("stage")
    box = stage.bounding_box()
    assert box is not None
    fit = [float(v) for v in (stage.get_attribute("data-view") or "").split()]
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -400)
    page.wait_for_function(
        "s => parseFloat(document.querySelector('[data-testid=stage]').dataset.view) > s",
        arg=fit[0],
    )
    zoomed = [float(v) for v in (stage.get_attribute("data-view") or "").split()]
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 80, box["y"] + box["height"] / 2 + 30, steps=5)
    page.mouse.up()
    panned = [float(v) for v in (stage.get_attribute("data-view") or "").split()]
    assert panned[0] == zoomed[0]
    assert abs(panned[1] - zoomed[1] - 80) < 1 and abs(panned[2] - zoomed[2] - 30) < 1
    page.keyboard.press("f")
    assert [float(v) for v in (stage.get_attribute("data-view") or "").split()] == fit
    page.keyboard.press("b")  # shortcuts do nothing for a viewer
    assert page.get_by_test_id("correction-tools").count() == 0
    s.shot("viewer-readonly")
    page.get_by_test_id("nav-models").click()
    page.get_by_test_id("models-table").wait_for()
    assert page.get_by_test_id("rollback").count() == 0
    assert page.locator("[data-testid^=promote-]").count() == 0
    page.get_by_test_id("nav-jobs").click()
    page.get_by_test_id("jobs-table").wait_for()
    assert page.get_by_test_id("start-finetune").count() == 0


def test_a_wrong_token_is_refused_and_signing_out_forgets_the_token(
    server: LiveServer, browser: Any, session: Callable[[str], Session]
) -> None:
    page = browser.new_page()
    try:
        page.goto(server.url + "/")
        page.get_by_test_id("token-input").fill("mlp_not-a-real-token")
        page.get_by_test_id("signin-submit").click()
        page.locator("[data-testid=signin-error]", has_text="not valid").wait_for()
        assert page.evaluate("() => sessionStorage.getItem('medloop.token')") is None
    finally:
        page.close()
    s = session("admin")
    assert s.page.evaluate("() => sessionStorage.getItem('medloop.token')") is not None
    s.page.get_by_test_id("signout").click()
    s.page.get_by_test_id("signin").wait_for()
    assert s.page.evaluate("() => sessionStorage.getItem('medloop.token')") is None
