"""The API's guards on their own: JSON depth, the failed-authentication guard, audit bounds,
the per-user work quota."""

from __future__ import annotations

import json

import pytest

from medloop.api.bodies import MAX_DEPTH, json_depth
from medloop.api.middleware import Metrics
from medloop.api.throttle import AuthGuard
from medloop.errors import ConfigError, TooMuchWork
from medloop.services.analyses import WorkQuota
from medloop.services.audit import MAX_DETAIL_BYTES, MAX_DETAIL_TEXT, bounded


@pytest.mark.parametrize(
    ("raw", "depth"),
    [(b"{}", 1), (b'{"a": [1, {"b": []}]}', 4), (b'"[[[["', 0), (b'["\\"[[", []]', 2)],
)
def test_json_depth(raw: bytes, depth: int) -> None:
    assert json_depth(raw) == depth


def test_json_depth_stops_counting_early() -> None:
    assert json_depth(b"[" * 1_000_000) == MAX_DEPTH + 1


def test_auth_guard_counts_audits_within_budget_and_blocks() -> None:
    metrics = Metrics()
    guard = AuthGuard(metrics, "3/minute", "2/minute", "100/minute")
    assert guard.retry_after("1.2.3.4") is None
    audited = [guard.failed("1.2.3.4", "missing") for _ in range(3)]
    assert audited == [True, True, False]
    wait = guard.retry_after("1.2.3.4")
    assert wait is not None and 1 <= wait <= 60
    assert guard.retry_after("5.6.7.8") is None  # per client
    text = metrics.render({})
    assert 'medloop_auth_failures_total{reason="missing"} 3' in text
    assert "medloop_auth_throttled_total 1" in text
    assert "medloop_auth_failures_unaudited_total 1" in text


def test_auth_guard_total_budget() -> None:
    guard = AuthGuard(Metrics(), "100/minute", "100/minute", "3/minute")
    assert [guard.failed(f"10.0.0.{i}", "invalid") for i in range(5)] == [True] * 3 + [False] * 2


def test_auth_guard_refuses_bad_limits() -> None:
    with pytest.raises(ConfigError, match="--auth-failures"):
        AuthGuard(Metrics(), "lots", "1/minute", "1/minute")


def test_audit_details_are_bounded() -> None:
    detail = {"path": "x" * 60_000, "ids": list(range(1000)), "deep": [[[[[[[["x"]]]]]]]]}
    out = bounded(detail)
    assert len(out["path"]) == MAX_DETAIL_TEXT + 1
    assert len(out["ids"]) == 101 and out["ids"][-1] == "… 900 more"
    assert out["deep"] == [[[[["…"]]]]]
    # A settings change keeps its labels' before and after.
    change = {"changes": {"labels": {"after": [{"value": 1, "color": "#00ff00"}]}}}
    assert bounded(change) == change


def test_audit_details_are_bounded_in_all() -> None:
    wide = {f"k{i}": ["y" * 400] * 100 for i in range(100)}  # each part within its bounds
    out = bounded(wide)
    assert set(out) == {"truncated"}
    assert len(json.dumps(out).encode()) <= MAX_DETAIL_BYTES


def test_work_quota_per_user() -> None:
    quota = WorkQuota(5)
    quota.take("u", 3)
    with pytest.raises(TooMuchWork, match="you have 3 analyses waiting or running"):
        quota.take("u", 3)
    quota.take("v", 5)  # per user
    quota.take(None, 10_000)  # the server itself is not counted
    with quota.hold("u", 2):
        assert quota.held("u") == 5
    quota.give("u", 3)
    assert quota.held("u") == 0
    quota.check("u", 5)
    assert quota.held("u") == 0
