"""The layers hold, and the check that says so fails when one is broken."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _lint_imports(config: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(exe), "--config", str(config), "--no-cache"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(pythonpath), "PATH": "/usr/bin:/bin"},
        timeout=300,
        check=False,
    )


def test_the_code_keeps_its_layers() -> None:
    res = _lint_imports(ROOT / "pyproject.toml", ROOT / "src")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout


def test_a_domain_module_importing_a_service_breaks_the_build(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "src" / "medloop", tmp_path / "src" / "medloop")
    image = tmp_path / "src" / "medloop" / "domain" / "image.py"
    image.write_text(image.read_text() + "\nfrom medloop.services import learning  # noqa\n")
    shutil.copyfile(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    res = _lint_imports(tmp_path / "pyproject.toml", tmp_path / "src")
    assert res.returncode != 0
    assert "medloop.domain is not allowed to import medloop.services" in res.stdout
