"""The API translates HTTP to service calls: it imports no storage, no torch, no numpy."""

from __future__ import annotations

import ast
from pathlib import Path

import medloop.api

API = Path(medloop.api.__file__).parent
FORBIDDEN = ("medloop.storage", "torch", "numpy", "sqlalchemy", "medloop.ml")


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_api_modules_import_no_storage_or_model_code() -> None:
    bad = {
        str(path.relative_to(API.parent)): sorted(
            m for m in _imports(path) if m.startswith(FORBIDDEN)
        )
        for path in sorted(API.rglob("*.py"))
    }
    assert {k: v for k, v in bad.items() if v} == {}
