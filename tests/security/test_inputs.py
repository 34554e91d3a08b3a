"""The catalogue, part 2: bad input. Each case gets its 4xx with a JSON error that names
the problem, and leaves every table and the blob store as they were (with at most one
audit event); the few inputs that are accepted store exactly what they should."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from . import inputs as mk
from .live import Live

P = "/api/v1/projects/discs"
Build = Callable[[Live], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    build: Build
    status: int
    needle: str = ""
    who: str = "annotator"
    changes: dict[str, int] = field(default_factory=dict)


def upload(
    data: bytes | Callable[[], bytes], name: str = "x.png", ctype: str = "image/png"
) -> Build:
    return lambda lv: {"files": {"file": (name, data() if callable(data) else data, ctype)}}


def pair(
    mask: bytes | Callable[[], bytes], image: bytes | None = None, split: str = "train"
) -> Build:
    def build(lv: Live) -> dict[str, Any]:
        m = mask() if callable(mask) else mask
        return {
            "files": {"image": ("i.png", image or lv.files["png"]), "mask": ("m.png", m)},
            "data": {"split": split},
        }

    return build


def body(obj: Any) -> Build:
    return lambda lv: {"json": obj}


def raw_json(text: bytes) -> Build:
    return lambda lv: {"content": text, "headers": {"content-type": "application/json"}}


def nested(depth: int) -> bytes:
    return b'{"image_id": ' + b"[" * depth + b"]" * depth + b"}"


rgb = np.zeros((64, 64, 3), np.uint8)
rgb[..., 0] = 255
IMAGE_CASES = [
    ("random bytes", b"hello, I am not an image", "not a supported image"),
    ("empty file", b"", ""),
    ("truncated PNG", lambda: mk.png(1)[:200], ""),
    ("truncated JPEG", lambda: mk.jpeg(1)[:300], ""),
    ("decompression bomb", lambda: mk.bilevel_png(20000, 20000), "20000"),
    ("zero-size image", lambda: mk.bilevel_png(0, 0), ""),
    ("not DICOM", b"\0" * 128 + b"DICM" + b"garbage" * 10, ""),
    ("truncated DICOM", lambda: mk.dicom_bytes(mk.ct())[:4000], ""),
    ("DICOM without pixel data", mk.no_pixels, "no pixel data"),
    ("DICOM in MPEG-2", mk.mpeg2, "1.2.840.10008.1.2.4.100"),
    ("DICOM of absurd size", mk.absurd_size, ""),
    ("DICOM with an absurd frame count", mk.absurd_frames, "NumberOfFrames"),
    ("DICOM pixel data shorter than its header", mk.short_pixels, "truncated"),
]
MASK_CASES = [
    ("mask of the wrong size", lambda: mk.png_of(np.zeros((10, 12), np.uint8)), "12"),
    (
        "mask with labels outside the project's",
        lambda: mk.png_of(np.full((64, 64), 7, np.uint8)),
        "7",
    ),
    ("RGB mask whose channels differ", lambda: mk.png_of(rgb), ""),
    (
        "mask with non-integer values",
        lambda: mk.tiff_of(np.full((64, 64), 0.5, np.float32)),
        "integer",
    ),
    ("mask that is no image", b"garbage", ""),
]

CASES: list[Case] = [
    *[Case(f"image: {n}", "POST", f"{P}/images", upload(d), 400, s) for n, d, s in IMAGE_CASES],
    *[
        Case(
            f"analysis upload: {n}",
            "POST",
            f"{P}/analyses",
            upload(d, "x.dcm", "application/dicom"),
            400,
            s,
        )
        for n, d, s in IMAGE_CASES
    ],
    *[
        Case(
            f"reference image: {n}",
            "POST",
            f"{P}/reference",
            lambda lv, d=d: {
                "files": {
                    "image": ("i.png", d() if callable(d) else d),
                    "mask": ("m.png", lv.files["mask"]),
                }
            },
            400,
            s,
        )
        for n, d, s in IMAGE_CASES
    ],
    *[
        Case(f"correction: {n}", "POST", f"{P}/analyses/{{a}}/corrections", upload(d), 400, s)
        for n, d, s in MASK_CASES
    ],
    *[
        Case(f"reference mask: {n}", "POST", f"{P}/reference", pair(d), 400, s)
        for n, d, s in MASK_CASES
    ],
    Case(
        "reference: unknown split",
        "POST",
        f"{P}/reference",
        pair(lambda: b"", split="holdout"),
        400,
        "split",
    ),
    Case(
        "upload over the size limit",
        "POST",
        f"{P}/images",
        upload(b"\x89PNG" + b"\0" * (3 << 20)),
        413,
        "limit",
    ),
    Case(
        "analysis of 300 frames (the project allows 100)",
        "POST",
        f"{P}/analyses",
        upload(lambda: mk.multiframe(300), "cine.dcm", "application/dicom"),
        413,
        "300 frames",
    ),
    Case(
        "image of 300 frames (the project allows 100)",
        "POST",
        f"{P}/images",
        upload(lambda: mk.multiframe(300), "cine.dcm", "application/dicom"),
        413,
        "at most 100",
    ),
    Case(
        "50 frames at once for a user allowed 20 waiting",
        "POST",
        f"{P}/analyses",
        upload(lambda: mk.multiframe(50), "cine.dcm", "application/dicom"),
        429,
        "at most 20",
    ),
    Case("analysis: unknown image", "POST", f"{P}/analyses", body({"image_id": "0" * 32}), 404),
    Case("analysis: invalid JSON", "POST", f"{P}/analyses", raw_json(b"{not json"), 422),
    Case(
        "analysis: invalid fields", "POST", f"{P}/analyses", body({"image_id": 5, "extra": 1}), 422
    ),
    Case(
        "analysis: JSON nested 100000 deep",
        "POST",
        f"{P}/analyses",
        raw_json(nested(100_000)),
        422,
        "nested",
    ),
    Case(
        "analysis: JSON nested 40 deep",
        "POST",
        f"{P}/analyses",
        raw_json(nested(40)),
        422,
        "nested",
    ),
    Case(
        "analysis: JSON body over 1 MB",
        "POST",
        f"{P}/analyses",
        raw_json(b'{"image_id": "' + b"x" * (2 << 20) + b'"}'),
        413,
    ),
    Case(
        "analysis: neither JSON nor multipart",
        "POST",
        f"{P}/analyses",
        lambda lv: {"content": b"x", "headers": {"content-type": "text/plain"}},
        400,
    ),
    Case(
        "project: JSON nested 100000 deep",
        "POST",
        "/api/v1/projects",
        raw_json(b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        400,
        who="admin",
    ),
    Case(
        "project: no labels",
        "POST",
        "/api/v1/projects",
        body({"name": "x"}),
        422,
        "labels",
        who="admin",
    ),
    Case(
        "project: labels not 1..K",
        "POST",
        "/api/v1/projects",
        body({"name": "x", "labels": [{"value": 3, "name": "a"}]}),
        422,
        who="admin",
    ),
    Case(
        "project: max_frames 0",
        "POST",
        "/api/v1/projects",
        body({"name": "x", "labels": [{"value": 1, "name": "a"}], "max_frames": 0}),
        422,
        "max_frames",
        who="admin",
    ),
    Case(
        "job: JSON nested 100000 deep",
        "POST",
        f"{P}/jobs",
        raw_json(b'{"kind": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        400,
        who="admin",
    ),
    *[
        Case(
            f"job options {o}",
            "POST",
            f"{P}/jobs",
            body({"kind": "train", "options": o}),
            422,
            who="admin",
        )
        for o in (
            {"steps": -5},
            {"patch_size": 100000},
            {"channels": [8]},
            {"steps": "many"},
            {"surprise": 1},
        )
    ],
    Case("job: unknown kind", "POST", f"{P}/jobs", body({"kind": "sleep"}), 422, who="admin"),
    Case(
        "job: options that clash with the project",
        "POST",
        f"{P}/jobs",
        body({"kind": "train", "options": {"patch_size": [34]}}),
        422,  # validated with the project's settings: invalid_settings, as for PATCH
        "multiple",
        who="admin",
    ),
    Case(
        "evaluate: bad version",
        "POST",
        f"{P}/jobs",
        body({"kind": "evaluate", "options": {"version": "../x"}}),
        422,
        who="admin",
    ),
    Case(
        "promote: reason over 1000 characters",
        "POST",
        f"{P}/models/v0001/promote",
        body({"reason": "x" * 1001}),
        422,
        who="admin",
    ),
    Case(
        "promote: unknown version", "POST", f"{P}/models/v0999/promote", body({}), 404, who="admin"
    ),
    Case(
        "DICOMweb: credentials in the URL",
        "PUT",
        f"{P}/dicom",
        body({"dicomweb": {"url": "http://medloop:pw@127.0.0.1:9/dicom-web"}}),
        422,
        "credentials",
        who="admin",
    ),
    Case(
        "DICOMweb: not an http URL",
        "PUT",
        f"{P}/dicom",
        body({"dicomweb": {"url": "file:///etc/passwd"}}),
        422,
        who="admin",
    ),
    Case(
        "DICOMweb: a host the operator did not allow",
        "PUT",
        f"{P}/dicom",
        body({"dicomweb": {"url": "http://169.254.169.254/latest"}}),
        400,
        "does not allow",
        who="admin",
    ),
    Case(
        "DICOMweb: sync without a server", "POST", f"{P}/dicomweb/sync", body({}), 400, who="admin"
    ),
    Case(
        "audit: offset past 64 bits",
        "GET",
        "/api/v1/audit",
        lambda lv: {"params": {"offset": 10**20}},
        400,
        "offset",
        who="admin",
    ),
    Case(
        "display: infinite window",
        "GET",
        f"{P}/images/{{i}}/display",
        lambda lv: {"params": {"width": "inf"}},
        422,
    ),
    Case(
        "display: zero window",
        "GET",
        f"{P}/images/{{i}}/display",
        lambda lv: {"params": {"width": 0}},
        422,
    ),
    *[
        Case(f"unknown {what}", "GET", f"{P}/{what}/{'0' * 32}", lambda lv: {}, 404, who="viewer")
        for what in ("images", "analyses", "corrections", "jobs", "models")
    ],
    Case("unknown project", "GET", "/api/v1/projects/nope", lambda lv: {}, 404, who="admin"),
    Case("cancel a finished job", "POST", f"{P}/jobs/{{j}}/cancel", body({}), 409, who="admin"),
    Case(
        "a SEG that is not DICOM",
        "POST",
        f"{P}/corrections/seg",
        upload(b"not dicom", "s.dcm"),
        400,
    ),
]

NAMES = [
    ("../../etc/passwd.png", "passwd.png"),
    ("a\x00b.png", None),  # httpx sends it percent-encoded
    ("evil\u202egnp.exe", "evil_gnp.exe"),
    ("zero\u200bwidth.png", "zero_width.png"),
    ("na\udcffme.png".encode("utf-8", "surrogateescape").decode("latin-1"), None),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(live: Live, case: Case) -> None:
    path = case.path.format(**live.ids)
    with live.client(case.who) as c, live.unchanged(max_audit=1):
        r = c.request(case.method, path, **case.build(live))
    assert r.status_code == case.status, r.text[:500]
    error = r.json()["error"]
    assert set(error) == {"code", "message"} and error["message"]
    assert case.needle in error["message"], error


@pytest.mark.parametrize(("name", "shown"), NAMES, ids=[repr(n) for n, _ in NAMES])
def test_file_names_are_stored_display_safe(live: Live, name: str, shown: str | None) -> None:
    before = live.stored()
    with live.client("annotator") as c:
        r = c.post(f"{P}/images", files={"file": (name, mk.png(1000 + NAMES.index((name, shown))))})
    assert r.status_code == 201, r.text
    assert before.changes(live.stored()) == {"images": 1, "blobs": 1}
    stored = r.json()["filename"]
    assert not any(ch in stored for ch in "/\\\x00\u202e\u200b"), repr(stored)
    if shown is not None:
        assert stored == shown


def test_bad_input_count() -> None:
    """The figure the README states."""
    assert len(CASES) + len(NAMES) >= 90
