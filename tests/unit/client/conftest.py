"""Fixtures for the client SDK tests: a recording mock transport and sample API answers."""

from __future__ import annotations

import email.parser
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from medloop.client import MedloopClient

BASE = "http://medloop.test"
TOKEN = "tok-secret-123"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
NOW = "2025-01-02T03:04:05Z"

Reply = httpx.Response | Callable[[httpx.Request], httpx.Response]


@dataclass
class Server:
    """Answers (method, path) from a table and records every request it saw."""

    routes: dict[tuple[str, str], list[Reply]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def on(
        self,
        method: str,
        path: str,
        status: int = 200,
        json_body: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Queue an answer; the last one queued for a route repeats."""
        if content is not None:
            resp = httpx.Response(status, content=content, headers=headers)
        else:
            resp = httpx.Response(status, json=json_body, headers=headers)
        self.routes.setdefault((method, path), []).append(resp)

    def on_call(
        self, method: str, path: str, fn: Callable[[httpx.Request], httpx.Response]
    ) -> None:
        self.routes.setdefault((method, path), []).append(fn)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        queue = self.routes.get((request.method, request.url.raw_path.decode().split("?")[0]))
        if not queue:
            return httpx.Response(
                404, json={"error": {"code": "no_route", "message": f"mock: no {request.url}"}}
            )
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        return reply(request) if callable(reply) else reply

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


@pytest.fixture
def server() -> Server:
    return Server()


@pytest.fixture
def client(server: Server) -> Iterator[MedloopClient]:
    http = httpx.Client(transport=httpx.MockTransport(server))
    with MedloopClient(BASE, TOKEN, http_client=http) as c:
        yield c
    http.close()


def multipart(request: httpx.Request) -> dict[str, tuple[str | None, str, bytes]]:
    """``{field: (filename, content type, bytes)}`` of a multipart/form-data request."""
    ctype = request.headers["content-type"]
    assert ctype.startswith("multipart/form-data"), ctype
    msg = email.parser.BytesParser().parsebytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + request.content
    )
    out: dict[str, tuple[str | None, str, bytes]] = {}
    for part in msg.get_payload():  # type: ignore[union-attr]
        name = part.get_param("name", header="content-disposition")
        filename = part.get_param("filename", header="content-disposition")
        payload = part.get_payload(decode=True)
        out[str(name)] = (filename, part.get_content_type(), payload)
    return out


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)


# -- sample answers ----------------------------------------------------------------------

LABELS = [{"value": 1, "name": "disc", "color": "#ff0000"}]
LEARNING = {
    "correction_weight": 64.0,
    "replay_size": 256,
    "steps": 300,
    "lr": 0.0003,
    "batch_size": 8,
    "held_out_share": 0.2,
    "strategy": "weighted-replay",
    "seed": 0,
}
ACCEPTANCE = {"margin": 0.01, "confidence": 0.95}
TRAINING = {
    "budget_s": 300.0,
    "steps": None,
    "patch_size": [256],
    "spacing": None,
    "scale": None,
    "channels": None,
    "batch_size": None,
    "lr": None,
    "val_every": None,
    "color": "auto",
    "seed": 0,
}


def project(**kw: Any) -> dict[str, Any]:
    return {
        "id": "p1",
        "name": "retina",
        "labels": LABELS,
        "image_kind": "microscopy",
        "learning": LEARNING,
        "acceptance": ACCEPTANCE,
        "training": TRAINING,
        "finetune_every": 10,
        "production_version": "v0001",
        "created_at": NOW,
    } | kw


def image(**kw: Any) -> dict[str, Any]:
    return {
        "id": "i1",
        "project_id": "p1",
        "sha256": "ab" * 32,
        "filename": "scan.png",
        "width": 64,
        "height": 48,
        "channels": 1,
        "spacing_mm": [0.1, 0.1],
        "metadata": {"modality": "OT"},
        "created_at": NOW,
    } | kw


def analysis(**kw: Any) -> dict[str, Any]:
    return {
        "id": "a1",
        "project_id": "p1",
        "image_id": "i1",
        "model_version": "v0001",
        "uncertainty": 0.125,
        "measurements": [
            {
                "value": 1,
                "name": "disc",
                "area_px": 321,
                "area_mm2": 3.21,
                "components": 2,
                "largest_component_px": 300,
                "largest_component_mm2": 3.0,
            }
        ],
        "corrected": False,
        "created_at": NOW,
    } | kw


def correction(**kw: Any) -> dict[str, Any]:
    return {
        "id": "c1",
        "analysis_id": "a1",
        "image_id": "i1",
        "model_version": "v0001",
        "author": "dr-who",
        "dice_vs_prediction": 0.8765,
        "held_out": False,
        "seq": 7,
        "corrections_until_finetune": 3,
        "finetune_job_id": None,
        "created_at": NOW,
    } | kw


def model_version(**kw: Any) -> dict[str, Any]:
    return {
        "version": "v0001",
        "status": "production",
        "parent": None,
        "kind": "train",
        "created_at": NOW,
        "metrics": {"locked_val": {"mean_dice": 0.9123}, "heldout_corrections": None},
        "lineage": {"corrections": []},
        "report": None,
    } | kw


def job(**kw: Any) -> dict[str, Any]:
    return {
        "id": "j1",
        "project_id": "p1",
        "kind": "finetune",
        "state": "queued",
        "progress": 0.0,
        "options": {"steps": 300},
        "log_tail": "",
        "result": None,
        "error": None,
        "attempts": 0,
        "created_at": NOW,
        "started_at": None,
        "finished_at": None,
        "heartbeat_at": None,
    } | kw


def audit_event(**kw: Any) -> dict[str, Any]:
    return {
        "id": 1,
        "at": NOW,
        "actor_name": "admin",
        "action": "image.read",
        "resource_type": "image",
        "resource_id": "i1",
        "project_id": "p1",
        "client_ip": "127.0.0.1",
        "outcome": "ok",
        "detail": None,
    } | kw


def page(*items: Any, total: int | None = None) -> dict[str, Any]:
    return {"items": list(items), "total": len(items) if total is None else total}
