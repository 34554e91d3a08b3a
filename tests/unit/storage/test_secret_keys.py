"""The server's keys: a 0600 key file made once, refused when others may read it, rotation."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from medloop.errors import ConfigError
from medloop.storage.secret_keys import FernetBox, ServerKeys, new_key


def test_key_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    file = tmp_path / "data" / "secret.key"
    first = ServerKeys.load(None, file)
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert ServerKeys.load(None, file).keys == first.keys
    sealed = first.box.seal("pw")
    assert "pw" not in sealed and ServerKeys.load(None, file).box.open(sealed) == "pw"


def test_a_key_file_others_may_read_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "secret.key"
    ServerKeys.load(None, file)
    file.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        ServerKeys.load(None, file)


def test_environment_keys_win_and_are_checked(tmp_path: Path) -> None:
    a, b = new_key(), new_key()
    keys = ServerKeys.load(f"{a}, {b}", tmp_path / "unused.key")
    assert keys.keys == [a, b] and keys.file is None and not (tmp_path / "unused.key").exists()
    old = FernetBox([b], "old").seal("x")
    assert keys.box.open(old) == "x"  # every key opens
    with pytest.raises(ConfigError, match="not a Fernet key"):
        ServerKeys.load("not-a-key", tmp_path / "k")
    with pytest.raises(ConfigError, match="MEDLOOP_SECRET_KEY"):
        keys.write([new_key()])


def test_a_wrong_key_does_not_open(tmp_path: Path) -> None:
    sealed = FernetBox([new_key()], "a").seal("x")
    with pytest.raises(ConfigError, match="cannot be opened"):
        FernetBox([new_key()], "b").open(sealed)


def test_a_box_over_the_file_follows_a_rotation(tmp_path: Path) -> None:
    """A running server's box seals with the key file's current key, and opens what a
    rotation sealed after it started."""
    keys = ServerKeys.load(None, tmp_path / "secret.key")
    running = keys.box
    fresh = new_key()
    rotated = keys.write([fresh])
    sealed_elsewhere = rotated.box.seal("new")
    assert running.open(sealed_elsewhere) == "new"
    assert FernetBox([fresh], "x").open(running.seal("y")) == "y"
