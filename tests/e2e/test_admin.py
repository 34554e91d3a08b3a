"""Running medloop without a shell, in a real browser against a fresh ``medloop serve``.

The server has only what the README's quick start needs the shell for: ``medloop serve``
and the first admin. Everything else happens in the browser: create a project, upload a
zip of 20 ``dsb2018_nuclei`` pairs, train with a 30 s budget and watch the curve, analyse
an image, change a setting, add a user and revoke its token (its next request fails),
and erase the image from its page (rows and blobs gone, checked through the API and the
data folder).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import ARTIFACTS, VIEWPORT, Session, signed_in_tabs
from .server import LiveServer, start_bare_server

DSB = Path(__file__).resolve().parents[3] / "shared" / "data" / "dsb2018_nuclei"


def _pick(split: str, n: int) -> list[dict[str, str]]:
    """The first ``n`` 256×256 fluorescence pairs of ``split`` (small: training fits 30 s)."""
    from PIL import Image

    out = []
    with open(DSB / "manifest.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["split"] != split or row["group"] != "fluorescence":
                continue
            with Image.open(DSB / row["image"]) as im:
                if im.size != (256, 256):
                    continue
            out.append(row)
            if len(out) == n:
                return out
    pytest.skip(f"dsb2018_nuclei has fewer than {n} small {split} pairs")


def _dataset_zip(path: Path) -> Path:
    """20 pairs (16 train, 4 val) with a manifest, in one top folder, as zipping a folder gives."""
    rows = _pick("train", 16) + _pick("val", 4)
    manifest = io.StringIO()
    writer = csv.writer(manifest)
    writer.writerow(["image", "mask", "split", "group"])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for row in rows:
            for column in ("image", "mask"):
                zf.write(DSB / row[column], f"dsb20/{row[column]}")
            writer.writerow([row["image"], row["mask"], row["split"], row["group"]])
        zf.writestr("dsb20/manifest.csv", manifest.getvalue())
    return path


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    if not (DSB / "manifest.csv").is_file():
        pytest.skip(f"{DSB} is not here (../shared/data)")
    srv = start_bare_server(tmp_path_factory.mktemp("fresh"))
    try:
        yield srv
    finally:
        srv.stop()
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "serve-fresh.log").write_text(srv.log_tail(200_000))


@pytest.fixture
def tab(browser: Any, fresh: LiveServer) -> Iterator[Callable[[str], Session]]:
    yield from signed_in_tabs(browser, fresh, timeout_ms=20_000)


def _api(fresh: LiveServer, method: str, path: str, token: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, f"{fresh.url}/api/v1{path}", headers=headers, timeout=60, **kw)


def _create_project(s: Session) -> None:
    page = s.page
    page.get_by_text("There are no projects yet").wait_for()
    page.get_by_test_id("new-project-name").fill("nuclei")
    page.get_by_test_id("label-name").fill("nucleus")
    page.get_by_test_id("label-color").fill("#ff3b30")
    page.get_by_test_id("add-label").click()
    assert page.get_by_test_id("label-row").count() == 2
    page.get_by_role("button", name="Remove label 2").click()
    page.get_by_test_id("new-project-kind").fill("microscopy")
    s.shot("admin-01-create-project")
    page.get_by_test_id("create-project").click()
    page.get_by_test_id("data-dropzone").wait_for()
    assert page.get_by_test_id("project-select").input_value() != ""


def _import_zip(s: Session, fresh: LiveServer, tmp: Path) -> None:
    page = s.page
    page.get_by_test_id("zip-input").set_input_files(str(_dataset_zip(tmp / "dsb20.zip")))
    item = page.locator("[data-testid=import-item][data-state=done]")
    item.wait_for(timeout=120_000)
    assert "added 20" in item.get_by_test_id("import-status").inner_text()
    page.get_by_test_id("count-train").wait_for()
    assert page.get_by_test_id("count-train").inner_text() == "16"
    assert page.get_by_test_id("count-val").inner_text() == "4"
    assert page.get_by_test_id("pair-row").count() == 20
    s.shot("admin-02-data", full_page=True)
    summary = _api(fresh, "GET", "/projects/nuclei/reference/summary", fresh.tokens["admin"]).json()
    assert summary["total"] == 20 and summary["groups"] == {"fluorescence": 20}


def _train(s: Session, fresh: LiveServer) -> str:
    page = s.page
    s.go("#/jobs")
    page.get_by_test_id("start-train").click()
    page.get_by_test_id("train-budget").fill("30")
    page.get_by_test_id("train-dialog-ok").click()
    failed = "[data-testid=job-live] [data-state=failed]"
    page.wait_for_function(
        "sel => Number(document.querySelector('[data-testid=curve-chart]')?.dataset.points || 0) > 5"
        " || document.querySelector(sel)",
        arg=failed,
        timeout=120_000,
    )
    assert page.locator(failed).count() == 0, page.get_by_test_id("job-live").inner_text()
    s.shot("admin-04-training-curve")
    outcome = page.get_by_test_id("job-outcome")
    outcome.wait_for(timeout=240_000)
    assert "v0001" in outcome.inner_text()
    s.shot("admin-05-trained")
    jobs = _api(fresh, "GET", "/projects/nuclei/jobs", fresh.tokens["admin"]).json()["items"]
    train = next(j for j in jobs if j["kind"] == "train")
    assert train["state"] == "succeeded" and train["options"]["budget_s"] == 30
    page.get_by_test_id("see-models").click()
    page.locator("[data-testid=model-row][data-version=v0001]").wait_for()
    return str(train["id"])


def _analyse(s: Session) -> str:
    """Upload an unseen image with a very long name; returns its analysis id."""
    page = s.page
    row = _pick("test", 1)[0]
    long_name = "scan_" + "0123456789_" * 11 + ".png"
    s.go("#/upload")
    page.get_by_test_id("file-input").set_input_files(
        {"name": long_name, "mimeType": "image/png", "buffer": (DSB / row["image"]).read_bytes()}
    )
    page.get_by_test_id("open-analysis").wait_for(timeout=60_000)
    analysis_id = page.get_by_test_id("open-analysis").get_attribute("href").split("/")[-1]
    # the worklist still fits the window with a long file name, whole on hover
    s.go("#/worklist")
    cell = page.locator(".file-name", has_text="scan_0123").first
    cell.wait_for()
    assert cell.get_attribute("title") == long_name
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= VIEWPORT["width"], width
    box = page.get_by_role("link", name="Open").first.bounding_box()
    assert box is not None and box["x"] + box["width"] <= VIEWPORT["width"]
    s.shot("admin-06-worklist")
    s.open_analysis(analysis_id)
    return analysis_id


def _small_network(s: Session, fresh: LiveServer) -> None:
    """In Settings: a small network and patch, and a step count (the planner's probe would
    refuse a budget it measures too short on a busy shared CPU), so 30 s train it."""
    page = s.page
    s.go("#/settings")
    budget = page.get_by_test_id("setting-training.budget_s")
    budget.wait_for()
    help_text = page.locator("[data-field='training.budget_s'] .field-help").inner_text()
    default = page.locator("[data-field='training.budget_s'] .field-default").inner_text()
    assert "Wall-clock seconds" in help_text and "default 300" in default
    assert "planned" in page.locator("[data-field='training.channels'] .field-default").inner_text()
    page.get_by_test_id("setting-training.patch_size").fill("64")
    page.get_by_test_id("setting-training.channels").fill("8, 16, 32")
    page.get_by_test_id("setting-training.batch_size").fill("4")
    page.get_by_test_id("setting-training.steps").fill("40")
    page.get_by_test_id("save-settings").click()
    page.wait_for_function(
        "sel => document.querySelector(sel)?.value === '8, 16, 32'",
        arg='[data-testid="setting-training.channels"]',
    )
    s.shot("admin-03-settings", full_page=True)
    project = _api(fresh, "GET", "/projects/nuclei", fresh.tokens["admin"]).json()
    assert project["training"]["channels"] == [8, 16, 32]
    assert project["training"]["patch_size"] == [64] and project["training"]["budget_s"] == 300
    events = _api(fresh, "GET", "/audit?limit=50", fresh.tokens["admin"]).json()["items"]
    change = next(e for e in events if e["action"] == "project.update")
    assert change["detail"]["changes"]["training.channels"] == {
        "before": None,
        "after": [8, 16, 32],
    }


def _add_user(s: Session, fresh: LiveServer) -> str:
    page = s.page
    s.go("#/users")
    page.get_by_test_id("add-user").click()
    page.get_by_test_id("user-name-input").fill("dr-lee")
    page.get_by_test_id("user-role-select").select_option("annotator")
    page.get_by_test_id("user-dialog-ok").click()
    token = page.get_by_test_id("new-token").input_value()
    assert token.startswith("mlp_")
    s.shot("admin-07-new-user-token")
    fresh.tokens["dr-lee"] = token
    return token


def _revoke(s: Session, who: Session, fresh: LiveServer, token: str) -> None:
    page = s.page
    assert _api(fresh, "GET", "/me", token).status_code == 200
    page.locator("[data-testid=user-row][data-user=dr-lee] [data-testid=show-tokens]").click()
    page.locator("[data-testid=token-row][data-state=active] [data-testid=revoke-token]").click()
    page.get_by_test_id("revoke-dialog-ok").click()
    page.locator("[data-testid=token-row][data-state=revoked]").wait_for()
    s.shot("admin-08-revoked")
    assert _api(fresh, "GET", "/me", token).status_code == 401
    # the user's next request in the browser fails, and the page asks to sign in again
    who.go("#/jobs")
    who.page.get_by_test_id("signin-error").wait_for()
    assert "session has ended" in who.page.get_by_test_id("signin-error").inner_text()


def _erase(s: Session, fresh: LiveServer, analysis_id: str) -> None:
    page, admin = s.page, fresh.tokens["admin"]
    a = _api(fresh, "GET", f"/projects/nuclei/analyses/{analysis_id}", admin).json()
    image = _api(fresh, "GET", f"/projects/nuclei/images/{a['image_id']}", admin).json()
    blob = fresh.data_dir / "blobs" / image["sha256"][:2] / image["sha256"][2:4] / image["sha256"]
    assert blob.is_file()
    s.open_analysis(analysis_id)
    page.get_by_test_id("erase").click()
    summary = page.get_by_test_id("erase-summary")
    summary.get_by_text("Removes 1 image, 1 analysis, 0 corrections, 0 reference pairs").wait_for()
    page.get_by_test_id("erase-reason").fill("the patient withdrew consent")
    s.shot("admin-09-erase")
    page.get_by_test_id("erase-dialog-ok").click()
    page.wait_for_function("() => location.hash === '#/worklist'", timeout=60_000)
    for path in (
        f"/projects/nuclei/images/{a['image_id']}",
        f"/projects/nuclei/analyses/{analysis_id}",
    ):
        assert _api(fresh, "GET", path, admin).status_code == 404, path
    assert not blob.exists()
    erasures = _api(fresh, "GET", "/projects/nuclei/erasures", admin).json()["items"]
    assert (
        erasures[0]["state"] == "done" and erasures[0]["reason"] == "the patient withdrew consent"
    )


def test_run_medloop_without_a_shell(
    tab: Callable[[str], Session], fresh: LiveServer, tmp_path: Path
) -> None:
    admin = tab("admin")
    _create_project(admin)
    _import_zip(admin, fresh, tmp_path)
    _small_network(admin, fresh)
    _train(admin, fresh)
    analysis_id = _analyse(admin)
    token = _add_user(admin, fresh)
    lee = tab("dr-lee")
    assert lee.page.get_by_test_id("user-role").text_content() == "annotator"
    _revoke(admin, lee, fresh, token)
    _erase(admin, fresh, analysis_id)


def test_a_folder_goes_up_pair_by_pair_and_a_project_is_archived(
    tab: Callable[[str], Session], fresh: LiveServer, tmp_path: Path
) -> None:
    folder = tmp_path / "cells"
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True)
    for i, row in enumerate(_pick("val", 4)):
        (folder / "images" / f"cell {i}.png").write_bytes((DSB / row["image"]).read_bytes())
        (folder / "masks" / f"cell {i}.png").write_bytes((DSB / row["mask"]).read_bytes())
    (folder / "masks" / "orphan.png").write_bytes((DSB / row["mask"]).read_bytes())
    s = tab("admin")
    page = s.page
    s.go("#/new-project")
    page.get_by_test_id("new-project-name").fill("cells")
    page.get_by_test_id("label-name").fill("cell")
    page.get_by_test_id("create-project").click()
    page.get_by_test_id("folder-input").set_input_files(str(folder))
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=import-item]')]"
        ".filter(e => ['done', 'error'].includes(e.dataset.state)).length === 5",
        timeout=60_000,
    )
    done = page.locator("[data-testid=import-item][data-state=done]")
    failed = page.locator("[data-testid=import-item][data-state=error]")
    assert done.count() == 4 and failed.count() == 1
    assert "orphan has no image" in failed.inner_text()
    page.get_by_test_id("data-total").wait_for()
    s.shot("admin-10-folder", full_page=True)
    pairs = _api(fresh, "GET", "/projects/cells/reference", fresh.tokens["admin"]).json()
    assert pairs["total"] == 4 and {p["split"] for p in pairs["items"]} == {"train", "val"}
    # archive it from its settings; restore it from the project list
    s.go("#/settings")
    page.get_by_test_id("archive-project").click()
    page.get_by_test_id("archive-dialog-ok").click()
    page.wait_for_function("() => location.hash === '#/worklist'")
    names = [
        p["name"] for p in _api(fresh, "GET", "/projects", fresh.tokens["admin"]).json()["items"]
    ]
    assert names == ["nuclei"]
    assert (
        _api(
            fresh,
            "POST",
            "/projects/cells/images",
            fresh.tokens["admin"],
            files={"file": ("a.png", b"x")},
        ).status_code
        == 409
    )
    page.get_by_test_id("project-select").select_option(label="+ New or archived project…")
    page.get_by_text("Archived projects").click()
    page.get_by_role("button", name="Restore").click()
    page.get_by_test_id("data-dropzone").wait_for()
    names = [
        p["name"] for p in _api(fresh, "GET", "/projects", fresh.tokens["admin"]).json()["items"]
    ]
    assert names == ["cells", "nuclei"]
