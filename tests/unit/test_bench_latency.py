"""The server-side click latency bench runs the real refine service on a stored volume."""

from __future__ import annotations

from medloop.bench.latency import Case, _manifest
from medloop.bench.latency_server import time_server_refine


def test_the_server_refine_is_timed_per_click_after_a_warm_up() -> None:
    tiny = Case("tiny", (20, 18, 12), (1.0, 1.0, 2.0), (16, 16, 8), (4, 8), None, None, 1000)
    seconds = time_server_refine(tiny, _manifest(tiny), 3, "cpu")
    assert len(seconds) == 3 and all(0 < s < 60 for s in seconds)
