"""Failed authentication: counted, audited within a budget, and limited per client.

Anyone who reaches the port can send requests without a token. Each such request is

- counted in ``/metrics`` (``medloop_auth_failures_total{reason}``);
- recorded in the audit trail only within a budget, per client and for all clients
  together (``--auth-audit-rate``, ``--auth-audit-rate-total``), with the path cut to
  :data:`MAX_PATH` characters; the rest is only counted
  (``medloop_auth_failures_unaudited_total``), so no one fills the disk;
- and a client past ``--auth-failures`` failed attempts in the window gets 429 with
  ``Retry-After`` for every request that needs a token, until the window has passed
  (``medloop_auth_throttled_total``). The server does not even look at its token, so
  trying tokens is slowed down as well as logged.

The limits are moving windows of the ``limits`` library, kept in this process's memory
(several API processes each keep their own).
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from medloop.api.middleware import Metrics
from medloop.errors import ConfigError

__all__ = ["MAX_PATH", "AuthGuard"]

MAX_PATH = 200
"""Characters of a refused request's path kept in its audit event."""

FAILURES = "medloop_auth_failures_total"
UNAUDITED = "medloop_auth_failures_unaudited_total"
THROTTLED = "medloop_auth_throttled_total"


def _limit(text: str, option: str) -> RateLimitItem:
    try:
        return parse(text)
    except ValueError as err:
        raise ConfigError(f"{option} must be like 20/minute or 100/hour, got {text!r}") from err


class AuthGuard:
    """Counts, audits within a budget, and throttles failed authentications.

    Args:
        metrics: where the counters go.
        failures: failed attempts one client may make per window (``limits`` notation).
        audit_rate: failed attempts of one client that are audited per window.
        audit_rate_total: failed attempts of all clients together audited per window.
    """

    def __init__(
        self, metrics: Metrics, failures: str, audit_rate: str, audit_rate_total: str
    ) -> None:
        self.metrics = metrics
        self._failures = _limit(failures, "--auth-failures")
        self._audit = _limit(audit_rate, "--auth-audit-rate")
        self._audit_total = _limit(audit_rate_total, "--auth-audit-rate-total")
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        metrics.declare(FAILURES, "Requests refused for a missing or invalid bearer token.")
        metrics.declare(UNAUDITED, "Refused requests past the audit budget: counted only.")
        metrics.declare(THROTTLED, "Requests answered 429 after too many failed attempts.")

    def retry_after(self, client: str) -> int | None:
        """Seconds ``client`` must wait before trying again, or ``None`` if it may try now."""
        if self._limiter.test(self._failures, "auth-failures", client):
            return None
        self.metrics.count(THROTTLED)
        reset = self._limiter.get_window_stats(self._failures, "auth-failures", client).reset_time
        return max(1, math.ceil(reset - time.time()))

    def failed(self, client: str, reason: str) -> bool:
        """Count a failed attempt of ``client``; returns whether to record it in the audit trail."""
        self.metrics.count(FAILURES, reason=reason)
        self._limiter.hit(self._failures, "auth-failures", client)
        audit = self._limiter.hit(self._audit, "auth-audit", client) and self._limiter.hit(
            self._audit_total, "auth-audit-total"
        )
        if not audit:
            self.metrics.count(UNAUDITED)
        return audit
