"""A real ``medloop serve`` for the security catalogue, and what it has stored.

:class:`Stored` is a snapshot of a data folder taken while the server runs (SQLite in
WAL mode has readers that never wait): the rows of every table, the audit events, and
the blob files. The catalogue compares snapshots taken before and after each request:
a refused or failed request must leave every table and the blob store as they were,
and at most one audit event.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from tests.integration.process.serverproc import ServerProcess

__all__ = ["Live", "Served", "Stored", "client_from", "wait_job"]

FINISHED = ("succeeded", "failed", "cancelled")


def client_from(url: str, source: str, token: str | None = None, **kw: Any) -> httpx.Client:
    """An HTTP client whose requests come from ``source`` (any 127.x.y.z address is this
    machine's loopback): the server sees each source as a different client."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=url, headers=headers, transport=transport, timeout=60, **kw)


@dataclass(frozen=True)
class Stored:
    """Row counts of every table (``audit_events`` apart) and the number of blob files."""

    rows: dict[str, int]
    audit: int
    blobs: int

    def changes(self, later: Stored) -> dict[str, int]:
        """What ``later`` holds more (or less) than this snapshot, audit events apart."""
        out = {t: later.rows.get(t, 0) - n for t, n in self.rows.items()}
        out["blobs"] = later.blobs - self.blobs
        return {k: v for k, v in out.items() if v}


@dataclass
class Served:
    """A running ``medloop serve``."""

    srv: ServerProcess

    @property
    def url(self) -> str:
        return self.srv.url

    @property
    def data_dir(self) -> Path:
        return self.srv.data_dir


@dataclass
class Live(Served):
    """A running server, its users' tokens and the ids of what it holds."""

    tokens: dict[str, str]
    ids: dict[str, str]
    files: dict[str, bytes]
    """Sample uploads: ``png`` (an image of the project), ``mask`` (its label map)."""

    def client(self, who: str | None = "admin", source: str = "127.0.0.1") -> httpx.Client:
        return client_from(self.url, source, self.tokens.get(who or "", None))

    def stored(self) -> Stored:
        engine = create_engine(f"sqlite:///{self.data_dir / 'medloop.db'}")
        try:
            with engine.connect() as conn:
                names = [
                    r[0]
                    for r in conn.execute(
                        text("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
                    )
                    if r[0] != "alembic_version"
                ]
                rows = {
                    n: int(conn.execute(text(f'SELECT count(*) FROM "{n}"')).scalar() or 0)
                    for n in names
                }
        finally:
            engine.dispose()
        audit = rows.pop("audit_events", 0)
        root = self.data_dir / "blobs"
        blobs = sum(
            1 for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] != "tmp"
        )
        return Stored(rows, audit, blobs)

    def audit_since(self, after: int) -> list[dict[str, Any]]:
        """Audit events with a row id above ``after``, oldest first (read from the database)."""
        engine = create_engine(f"sqlite:///{self.data_dir / 'medloop.db'}")
        try:
            with engine.connect() as conn:
                result = conn.execute(
                    text("SELECT * FROM audit_events WHERE id > :a ORDER BY id"), {"a": after}
                )
                return [dict(r._mapping) for r in result]
        finally:
            engine.dispose()

    def last_audit_id(self) -> int:
        engine = create_engine(f"sqlite:///{self.data_dir / 'medloop.db'}")
        try:
            with engine.connect() as conn:
                return int(conn.execute(text("SELECT max(id) FROM audit_events")).scalar() or 0)
        finally:
            engine.dispose()

    @contextmanager
    def unchanged(self, max_audit: int = 1) -> Iterator[None]:
        """The block changes no table and no blob, and adds at most ``max_audit`` audit events."""
        before = self.stored()
        yield
        after = self.stored()
        assert before.changes(after) == {}, f"stored: {before.changes(after)}"
        assert 0 <= after.audit - before.audit <= max_audit, (
            f"{after.audit - before.audit} audit events for one request"
        )


def wait_job(c: httpx.Client, path: str, timeout: float = 180.0) -> dict[str, Any]:
    """Poll ``GET path`` (a job) until it is finished; returns its last state."""
    end = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < end:
        r = c.get(path)
        assert r.status_code == 200, r.text
        job = r.json()
        if job["state"] in FINISHED:
            return job
        time.sleep(0.2)
    raise TimeoutError(f"job not finished after {timeout} s: {job}")
