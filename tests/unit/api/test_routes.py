"""The routes against fake services: typed job bodies answer 422 before anything is queued,
and the one audit mechanism records denied, failed and successful requests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from medloop.api.errors import install_error_handlers
from medloop.api.middleware import Metrics
from medloop.api.routers import images, jobs
from medloop.api.throttle import AuthGuard
from medloop.domain.jobs import JobRecord, TrainJob
from medloop.domain.records import ProjectRecord, UserRecord
from medloop.domain.settings import ProjectSettings
from medloop.errors import ImageReadError, NotFoundError

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PROJECT = ProjectRecord(
    "p1",
    "discs",
    ProjectSettings.parse(
        {
            "labels": [{"value": 1, "name": "disc", "color": "#ff0000"}],
            "training": {"channels": [8, 16, 32], "patch_size": [32]},
        }
    ),
    NOW,
)
USERS = {
    "tok-admin": UserRecord("u1", "alice", "admin", None, False, NOW),
    "tok-viewer": UserRecord("u2", "victor", "viewer", "p1", False, NOW),
    "tok-outsider": UserRecord("u3", "olga", "admin", "p2", False, NOW),
}


@dataclass
class Fakes:
    events: list[tuple[str, str, str | None, str, dict[str, Any] | None]] = field(
        default_factory=list
    )
    submitted: list[Any] = field(default_factory=list)


def _services(fakes: Fakes) -> SimpleNamespace:
    def record(actor: Any, action: str, kind: str, rid: Any = None, pid: Any = None,
               outcome: str = "ok", detail: Any = None, coalesce_s: Any = None) -> None:  # fmt: skip
        fakes.events.append((action, actor.name, rid, outcome, detail))

    def find(ref: str) -> ProjectRecord:
        if ref in ("p1", "discs"):
            return PROJECT
        raise NotFoundError(f"no project {ref!r}")

    def submit(project: ProjectRecord, spec: Any, user: str | None) -> JobRecord:
        if isinstance(spec, TrainJob):
            spec.options.apply(project.settings.training)
        fakes.submitted.append(spec)
        return JobRecord("j1", project.id, spec.kind, "queued", created_at=NOW)

    def ingest(*args: Any) -> Any:
        raise ImageReadError("x.png: not an image")

    return SimpleNamespace(
        users=SimpleNamespace(authenticate=USERS.get),
        audit=SimpleNamespace(record=record),
        projects=SimpleNamespace(find=find),
        jobs=SimpleNamespace(submit=submit),
        images=SimpleNamespace(ingest=ingest),
    )


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def client(fakes: Fakes) -> Iterator[TestClient]:
    app = FastAPI()
    app.state.services = _services(fakes)
    app.state.auth_guard = AuthGuard(Metrics(), "1000/minute", "1000/minute", "1000/minute")
    install_error_handlers(app)
    app.include_router(jobs.router)
    app.include_router(images.router)
    with TestClient(app) as c:
        yield c


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "train", "options": {"steps": -5}},
        {"kind": "train", "options": {"patch_size": [100000]}},
        {"kind": "train", "options": {"patch_size": 100000}},
        {"kind": "finetune", "options": {"correction_weight": 0}},
        {"kind": "finetune", "options": {"surprise": 1}},
        {"kind": "sleep"},
    ],
)
def test_bad_job_options_answer_422_and_queue_nothing(
    client: TestClient, fakes: Fakes, body: dict[str, Any]
) -> None:
    r = client.post("/api/v1/projects/discs/jobs", json=body, headers=_h("tok-admin"))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_request"
    assert fakes.submitted == []


def test_options_that_clash_with_the_project_are_refused_and_audited(
    client: TestClient, fakes: Fakes
) -> None:
    body = {"kind": "train", "options": {"patch_size": [34]}}  # 3 levels need multiples of 4
    r = client.post("/api/v1/projects/discs/jobs", json=body, headers=_h("tok-admin"))
    assert r.status_code == 422 and "patch_size [34]" in r.json()["error"]["message"]
    assert fakes.events[-1][:4] == ("job.create", "alice", None, "error")


def test_a_job_is_queued_typed_and_audited(client: TestClient, fakes: Fakes) -> None:
    body = {"kind": "finetune", "options": {"steps": 5}}
    r = client.post("/api/v1/projects/discs/jobs", json=body, headers=_h("tok-admin"))
    assert r.status_code == 202, r.text
    (spec,) = fakes.submitted
    assert spec.kind == "finetune" and spec.options.steps == 5
    assert fakes.events == [("job.create", "alice", "j1", "ok", {"kind": "finetune"})]


def test_denials_are_audited(client: TestClient, fakes: Fakes) -> None:
    assert client.get("/api/v1/projects/discs/jobs").status_code == 401
    r = client.post("/api/v1/projects/discs/jobs", json={"kind": "train"}, headers=_h("tok-viewer"))
    assert r.status_code == 403
    r = client.get("/api/v1/projects/discs/jobs", headers=_h("tok-outsider"))
    assert r.status_code == 404 and "discs" in r.json()["error"]["message"]
    assert [(e[0], e[3]) for e in fakes.events] == [
        ("auth.login", "denied"),
        ("job.create", "denied"),
        ("job.list", "denied"),
    ]


def test_a_failed_upload_is_audited_as_an_error(client: TestClient, fakes: Fakes) -> None:
    r = client.post(
        "/api/v1/projects/discs/images",
        files={"file": ("x.png", b"nope")},
        headers=_h("tok-admin"),
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_image"
    action, actor, _, outcome, detail = fakes.events[-1]
    assert (action, actor, outcome) == ("image.create", "alice", "error")
    assert detail is not None and "not an image" in detail["error"]
