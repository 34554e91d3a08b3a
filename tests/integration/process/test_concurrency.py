"""20 clients at once against a real server: uploads, analyses, corrections; counts exact after.

Twenty threads each upload a distinct image, analyse it and (every other one) correct
it; six more threads upload the very same bytes at the same moment. The ten corrections
send the same mask bytes at once (this once pulled a blob from under a concurrent
request: a 500 "blob ... is missing"). Afterwards the API
lists, the audit log and the database agree to the unit, and no request got a 5xx.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import httpx

from .checks import check_blobs, count_rows, png
from .conftest import Live
from .serverproc import CLEAN_EXITS

DISTINCT = 20
SAME = 6


def _items(c: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    r = c.get(path, params=params)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return list(r.json()["items"])


def _audit(live: Live) -> list[dict[str, Any]]:
    with live.client("admin") as c:
        r = c.get("/api/v1/audit", params={"limit": 1000, "project_id": live.project_id})
        assert r.status_code == 200, r.text
        return list(r.json()["items"])


def test_twenty_clients_at_once(live: Live) -> None:
    with live.client("admin") as c:
        before_analyses = len(_items(c, live.api("/analyses"), limit=500))
        before_corrections = len(_items(c, live.api("/corrections"), limit=1000))
    before_events = {e["id"] for e in _audit(live)}
    before_rows = count_rows(live.data_dir)

    barrier = threading.Barrier(DISTINCT + SAME)
    statuses: list[tuple[str, int]] = []
    results: dict[int, dict[str, Any]] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()
    shared = png(424242)
    mask = live.mask(0)  # a valid 64×64 mask; its content does not matter here

    def client(k: int) -> None:
        def note(kind: str, r: httpx.Response) -> None:
            with lock:
                statuses.append((kind, r.status_code))
            assert r.status_code in (200, 201), f"{kind}: {r.status_code} {r.text[:300]}"

        try:
            with live.client("annotator") as c:
                data = shared if k >= DISTINCT else png(5000 + k)
                barrier.wait(60)
                up = c.post(live.api("/images"), files={"file": (f"c{k}.png", data, "image/png")})
                note("image", up)
                image_id = up.json()["id"]
                a = c.post(live.api("/analyses"), json={"image_id": image_id})
                note("analysis", a)
                out: dict[str, Any] = {"image": image_id, "new": up.status_code == 201}
                out["analysis"] = a.json()["id"]
                if k < DISTINCT and k % 2 == 0:
                    fix = c.post(
                        live.api(f"/analyses/{out['analysis']}/corrections"),
                        files={"file": ("m.png", mask, "image/png")},
                    )
                    note("correction", fix)
                    out["correction"] = fix.json()["id"]
                    out["seq"] = fix.json()["seq"]
                    assert fix.json()["finetune_job_id"] is None
                with lock:
                    results[k] = out
        except BaseException as err:  # reported by the main thread
            with lock:
                errors.append(err)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(DISTINCT + SAME)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    assert all(s < 500 for _, s in statuses), statuses
    assert len(results) == DISTINCT + SAME

    # What each client was told.
    codes = Counter(statuses)
    assert codes[("image", 201)] == DISTINCT + 1 and codes[("image", 200)] == SAME - 1, codes
    assert codes[("analysis", 201)] == DISTINCT + SAME, codes
    assert codes[("correction", 201)] == DISTINCT // 2, codes
    assert len({results[k]["image"] for k in range(DISTINCT, DISTINCT + SAME)}) == 1
    assert len({r["image"] for r in results.values()}) == DISTINCT + 1
    assert len({r["analysis"] for r in results.values()}) == DISTINCT + SAME
    seqs = sorted(r["seq"] for r in results.values() if "seq" in r)
    assert seqs == list(range(before_corrections, before_corrections + DISTINCT // 2))

    # What the API lists.
    with live.client("viewer") as c:
        analyses = _items(c, live.api("/analyses"), limit=500)
        corrections = _items(c, live.api("/corrections"), limit=1000)
        jobs = _items(c, live.api("/jobs"))
    assert len(analyses) == before_analyses + DISTINCT + SAME
    assert len(corrections) == before_corrections + DISTINCT // 2
    assert {r["analysis"] for r in results.values()} <= {a["id"] for a in analyses}
    assert sum(a["corrected"] for a in analyses) == len(corrections)
    assert not [j for j in jobs if j["kind"] == "finetune"], "finetune_every=1000: no job"

    # What the audit log recorded.
    new = [e for e in _audit(live) if e["id"] not in before_events]
    acts = Counter((e["action"], e["outcome"]) for e in new)
    assert acts[("image.create", "ok")] == DISTINCT + SAME, acts
    assert sum(bool(e["detail"]["new"]) for e in new if e["action"] == "image.create") == (
        DISTINCT + 1
    )
    assert acts[("analysis.create", "ok")] == DISTINCT + SAME, acts
    assert acts[("correction.create", "ok")] == DISTINCT // 2, acts
    assert not [e for e in new if e["outcome"] == "error"], new

    # What the database holds, and every blob verifies.
    assert live.srv.stop() in CLEAN_EXITS
    rows = count_rows(live.data_dir)
    assert rows["images"] == before_rows["images"] + DISTINCT + 1
    assert rows["analyses"] == before_rows["analyses"] + DISTINCT + SAME
    assert rows["corrections"] == before_rows["corrections"] + DISTINCT // 2
    counts = check_blobs(live.data_dir)
    assert counts["image"] == rows["images"] and counts["analysis"] == rows["analyses"]
    assert "Traceback" not in live.srv.log_tail(10**7)
