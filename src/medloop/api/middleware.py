"""ASGI middleware: upload size limit (streamed), body timeout, request metrics, security
headers."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from threading import Lock
from typing import Any, ClassVar

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit", "BodyTimeout", "Metrics", "MetricsMiddleware", "SecurityHeaders"]

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Answer 413 when a request body exceeds ``max_bytes``, counting as it streams in.

    A declared ``Content-Length`` over the limit is refused before anything is read;
    a chunked body is cut off as soon as it passes the limit. ``max_bytes`` covers
    the whole multipart body, so it allows a little more than the file limit.
    ``larger`` gives the paths ending so (a zip of reference data) a limit of their own.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, larger: dict[str, int] | None = None) -> None:
        self.app, self.default_max, self.larger = app, max_bytes, dict(larger or {})

    def _limit(self, path: str) -> int:
        for suffix, limit in self.larger.items():
            if path.endswith(suffix):
                return limit
        return self.default_max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self._limit(str(scope.get("path", "")))
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await _send_413(send, max_bytes)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    raise _TooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_413(send, max_bytes)


async def _send_413(send: Send, limit: int) -> None:
    await _send_error(send, 413, "too_large", f"request body is over the limit of {limit} bytes")


async def _send_error(
    send: Send, status: int, code: str, message: str, close: bool = False
) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyTimeout:
    """Answer 408 (and close the connection) when a request body stalls.

    Each part of the body must arrive within ``timeout_s`` of the previous one, so a
    client that sends half a request and waits holds its connection (and its spooled
    upload) for at most that long. Waiting after the body (for a disconnect) is not
    timed. The request head is timed by the HTTP protocol (:mod:`medloop.api.serving`).
    The 408 is raised where the body is read, as an ``HTTPException`` (which the body
    parsers pass on), so it reaches the error handlers like any refusal.
    """

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app, self.timeout_s = app, timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except TimeoutError:
                raise HTTPException(
                    408,
                    f"the request body stalled for more than {self.timeout_s:g} s",
                    headers={"Connection": "close"},
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await self.app(scope, timed_receive, send)


class Metrics:
    """Request counters, latency histograms and named event counters, rendered in
    Prometheus text format."""

    def __init__(self) -> None:
        self._lock = Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[tuple[str, str], list[float]] = {}
        self.counters: dict[str, dict[tuple[tuple[str, str], ...], int]] = {}
        self.help: dict[str, str] = {}

    def declare(self, name: str, help_text: str) -> None:
        """Show counter ``name`` (with ``help_text``) even before it first counts."""
        with self._lock:
            self.counters.setdefault(name, {})
            self.help[name] = help_text

    def count(self, name: str, n: int = 1, **labels: str) -> None:
        """Add ``n`` to counter ``name`` with ``labels``."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self.counters.setdefault(name, {})
            series[key] = series.get(key, 0) + n

    def value(self, name: str, **labels: str) -> int:
        """The current value of counter ``name`` with ``labels``."""
        with self._lock:
            return self.counters.get(name, {}).get(tuple(sorted(labels.items())), 0)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            h = self.latency.setdefault((method, route), [0.0] * (len(_BUCKETS) + 2))
            for i, b in enumerate(_BUCKETS):
                if seconds <= b:
                    h[i] += 1
            h[-2] += 1  # count
            h[-1] += seconds  # sum

    def render(self, gauges: dict[str, list[tuple[dict[str, str], float]]]) -> str:
        out = ["# TYPE medloop_http_requests_total counter"]
        with self._lock:
            for (m, r, s), n in sorted(self.requests.items()):
                out.append(
                    f'medloop_http_requests_total{{method="{m}",route="{r}",status="{s}"}} {n}'
                )
            out.append("# TYPE medloop_http_request_seconds histogram")
            for (m, r), h in sorted(self.latency.items()):
                for i, b in enumerate(_BUCKETS):
                    out.append(
                        f'medloop_http_request_seconds_bucket{{method="{m}",route="{r}",le="{b}"}} {h[i]:.0f}'
                    )
                out.append(
                    f'medloop_http_request_seconds_bucket{{method="{m}",route="{r}",le="+Inf"}} {h[-2]:.0f}'
                )
                out.append(
                    f'medloop_http_request_seconds_count{{method="{m}",route="{r}"}} {h[-2]:.0f}'
                )
                out.append(
                    f'medloop_http_request_seconds_sum{{method="{m}",route="{r}"}} {h[-1]:.6f}'
                )
            for name, series in sorted(self.counters.items()):
                if name in self.help:
                    out.append(f"# HELP {name} {self.help[name]}")
                out.append(f"# TYPE {name} counter")
                for key, n in sorted(series.items()):
                    lab = ",".join(f'{k}="{v}"' for k, v in key)
                    out.append(f"{name}{{{lab}}} {n}" if lab else f"{name} {n}")
        for name, samples in gauges.items():
            out.append(f"# TYPE {name} gauge")
            for labels, value in samples:
                lab = ",".join(f'{k}="{v}"' for k, v in labels.items())
                out.append(f"{name}{{{lab}}} {value}" if lab else f"{name} {value}")
        return "\n".join(out) + "\n"


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = {"code": 500}

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        finally:
            route: Any = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(
                scope.get("method", "?"), path, status["code"], time.perf_counter() - t0
            )


class SecurityHeaders:
    """A Content Security Policy and the usual hardening headers on every response."""

    HEADERS: ClassVar[list[tuple[bytes, bytes]]] = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-store"),
    ]
    CSP: ClassVar[tuple[bytes, bytes]] = (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.HEADERS, self.CSP]
            await send(message)

        await self.app(scope, receive, wrapped)
