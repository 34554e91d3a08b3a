"""While a volume is analysed, freed buffers of a few MiB leave the resident memory;
afterwards glibc keeps them in its heap again (what training's speed needs).

Run in subprocesses: the setting is per process. Without it, one freed 8 MiB buffer
raises the threshold, the next ones come from the heap, and one buffer left at its top
keeps every freed one below it resident.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

_SCRIPT = """
import contextlib, json, sys
import numpy as np
from medloop.malloc import freed_memory_returned

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

def kept():
    np.ones(1 << 20).sum()  # one 8 MiB buffer freed: glibc's threshold follows it, unless fixed
    base = rss()
    bufs = [np.ones(1 << 20) for _ in range(30)]  # 240 MiB in 8 MiB buffers
    last = bufs.pop()
    del bufs  # all but the last one freed
    return rss() - base

out = {}
if sys.argv[1] == "scoped":
    with freed_memory_returned():
        with freed_memory_returned():  # a second analysis at the same time
            pass
        out["inside"] = kept()  # still low: one holder left
    out["after"] = kept()
else:
    out["default"] = kept()
print(json.dumps(out))
"""


def _kept(mode: str) -> dict[str, float]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    run = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode],
        env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out: dict[str, float] = json.loads(run.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_buffers_leave_the_resident_memory_only_while_a_volume_is_analysed() -> None:
    scoped = _kept("scoped")
    assert scoped["inside"] < 40, scoped
    assert scoped["after"] > 150, scoped  # heap again: training's buffers are not remapped
    default = _kept("default")  # what the setting is for
    assert default["default"] > 150, default
