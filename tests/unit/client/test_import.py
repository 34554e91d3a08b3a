"""Importing the SDK must stay light: no torch, numpy, FastAPI, SQLAlchemy, rest of medloop."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import medloop.client
heavy = ("torch", "numpy", "fastapi", "sqlalchemy", "starlette", "monai", "scipy", "PIL")
bad = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
assert not bad, bad
other = sorted(
    m for m in sys.modules
    if m.startswith("medloop.") and not m.startswith("medloop.client")
)
assert not other, other
assert 'torch' not in sys.modules and 'numpy' not in sys.modules
assert 'fastapi' not in sys.modules and 'sqlalchemy' not in sys.modules
print("ok")
"""


def test_import_medloop_client_is_light() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_public_api_is_exported() -> None:
    import medloop.client as mc

    for name in mc.__all__:
        assert hasattr(mc, name), name
    assert {"MedloopClient", "ApiError", "NotFound", "AnalysisOut", "Page"} <= set(mc.__all__)
