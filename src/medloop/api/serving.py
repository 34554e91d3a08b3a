"""Serving the app with uvicorn: TLS or a trusted proxy, and timeouts against slow clients.

uvicorn times idle keep-alive connections but not a request's head: a client that
opens a connection and sends half a request line would hold it for ever. Here the
head (request line and headers) must arrive within ``header_timeout_s`` of the
connection opening, or of the previous response on a kept-alive connection, and the
body must keep coming (:class:`~medloop.api.middleware.BodyTimeout`). Connections
beyond ``max_connections`` are answered 503. ``X-Forwarded-For`` and
``X-Forwarded-Proto`` are believed only from ``trusted_proxies``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from medloop.settings import Settings

__all__ = ["TimedH11Protocol", "run"]

_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 24\r\n\r\nrequest head timed out.\n"
)


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's head."""

    header_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.trailing_data[0]:  # part of a head arrived: say why before closing
            self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:
            self._cancel_head_timer()  # the head is in

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_head_timer()  # the next request on this connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)


def run(app: Any, settings: Settings) -> None:
    """Serve ``app`` until interrupted (SIGINT/SIGTERM: a graceful stop)."""
    import uvicorn

    protocol = type(
        "MedloopH11Protocol", (TimedH11Protocol,), {"header_timeout_s": settings.header_timeout_s}
    )
    tls = settings.tls_certfile is not None
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        http=protocol,
        ssl_certfile=str(settings.tls_certfile) if tls else None,
        ssl_keyfile=str(settings.tls_keyfile) if tls else None,
        log_level="warning",
        proxy_headers=settings.behind_proxy,
        forwarded_allow_ips=",".join(settings.trusted_proxies) if settings.behind_proxy else "",
        timeout_keep_alive=max(1, round(settings.keepalive_timeout_s)),
        limit_concurrency=settings.max_connections,
        server_header=False,
    )
