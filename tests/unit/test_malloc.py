"""With glibc's mmap threshold fixed, freed buffers of a few MiB leave the resident memory.

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
import json, sys
import numpy as np
from medloop.malloc import fix_mmap_threshold

fixed = fix_mmap_threshold() if sys.argv[1] == "fix" else False
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
np.ones(1 << 20).sum()  # one 8 MiB buffer freed: glibc's threshold follows it, unless fixed
base = rss()
bufs = [np.ones(1 << 20) for _ in range(30)]  # 240 MiB in 8 MiB buffers
last = bufs.pop()
del bufs  # all but the last one freed
print(json.dumps({"fixed": fixed, "kept_mib": rss() - base}))
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
def test_freed_buffers_leave_the_resident_memory_once_the_threshold_is_fixed() -> None:
    fixed = _kept("fix")
    assert fixed["fixed"]
    assert fixed["kept_mib"] < 40, fixed
    default = _kept("default")  # what the setting is for
    assert default["kept_mib"] > 150, default
