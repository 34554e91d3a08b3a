"""``medloop users add|list|disable|enable|token|revoke`` on a data folder."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from medloop.cli import app
from medloop.runtime import Runtime
from medloop.settings import Settings

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.output


def _who(data_dir: Path, token: str) -> str | None:
    rt = Runtime(Settings(data_dir=data_dir))
    try:
        user = rt.services.users.authenticate(token)
        return None if user is None else user.name
    finally:
        rt.stop()


def test_users_and_tokens_from_the_command_line(tmp_path: Path) -> None:
    d = str(tmp_path / "srv")
    code, out = _run("users", "add", "admin", "--role", "admin", "--data-dir", d)
    assert code == 0 and "person 'admin' (admin) created" in out
    admin_token = out.strip().splitlines()[-1]
    code, out = _run(
        "users", "add", "scanner-1", "--role", "annotator", "--device", "--data-dir", d
    )
    scanner_token = out.strip().splitlines()[-1]
    assert code == 0 and _who(tmp_path / "srv", scanner_token) == "scanner-1"
    code, out = _run(
        "users", "token", "scanner-1", "--name", "spare", "--expires-days", "7", "--data-dir", d
    )
    spare = out.strip().splitlines()[-1]
    assert code == 0 and spare.startswith("mlp_") and spare != scanner_token
    code, out = _run("users", "list", "--tokens", "--data-dir", d)
    assert code == 0 and "scanner-1" in out and "device" in out and "spare" in out
    assert admin_token not in out and spare not in out
    token_id = next(line.split("  ")[1] for line in out.splitlines() if "  spare  " in line)
    code, out = _run("users", "revoke", "scanner-1", token_id, "--data-dir", d)
    assert code == 0 and "revoked 1" in out
    assert _who(tmp_path / "srv", spare) is None
    assert _who(tmp_path / "srv", scanner_token) == "scanner-1"
    assert _run("users", "disable", "scanner-1", "--data-dir", d)[0] == 0
    assert _who(tmp_path / "srv", scanner_token) is None
    assert _run("users", "enable", "scanner-1", "--data-dir", d)[0] == 0
    assert _who(tmp_path / "srv", scanner_token) == "scanner-1"
    code, out = _run("users", "revoke", "scanner-1", "--all", "--data-dir", d)
    assert code == 0 and "revoked 1" in out and _who(tmp_path / "srv", scanner_token) is None


def test_bad_input_ends_with_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    d = str(tmp_path / "srv")
    assert _run("users", "add", "admin", "--role", "admin", "--data-dir", d)[0] == 0
    cases = [
        (("users", "add", "x", "--role", "root"), "--role must be"),
        (("users", "add", "admin", "--role", "viewer"), "already exists"),
        (("users", "disable", "admin"), "last enabled admin"),
        (("users", "token", "ghost"), "no user 'ghost'"),
        (("users", "revoke", "admin"), "a token id, or --all"),
        (("users", "revoke", "admin", "0" * 32), "not found"),
        (("users", "token", "admin", "--expires-days", "3", "--no-expiry"), "not both"),
    ]
    for args, message in cases:
        code, out = _run(*args, "--data-dir", d)
        assert code != 0, args
        assert message in out, (args, out)
        assert len([line for line in out.splitlines() if line.strip()]) == 1, out
