"""The server's secret keys, kept outside the database, and the box that seals with them.

Secrets stored in the database (PACS passwords and tokens, de-identification keys) are
encrypted with `Fernet <https://cryptography.io/en/latest/fernet/>`_ (AES-128-CBC with
an HMAC-SHA256, from ``cryptography``). The keys come from ``MEDLOOP_SECRET_KEY``
(comma-separated, the first encrypts) or else from a key file, by default
``<data-dir>/secret.key``: one key per line, the first encrypts, created with mode
0600 on first start and refused if anyone but its owner may read it. Every key listed
opens what it sealed, so a rotation adds a key first and drops the old one after
everything was sealed again (:meth:`ServerKeys.write`). A box over the key file reads
the file again before it seals and when a secret does not open, so a running server
follows a rotation made by ``medloop secrets rotate`` without a restart.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from medloop.durable import fsync_dir
from medloop.errors import ConfigError

__all__ = ["FernetBox", "ServerKeys", "new_key"]


def new_key() -> str:
    """A fresh random Fernet key (44 url-safe base64 characters)."""
    return Fernet.generate_key().decode("ascii")


def _fernet(key: str, where: str) -> Fernet:
    try:
        return Fernet(key.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as err:
        raise ConfigError(
            f"{where} holds something that is not a Fernet key (32 url-safe base64-encoded "
            "bytes; `medloop secrets new-key` prints one)"
        ) from err


class FernetBox:
    """A :class:`~medloop.domain.secrets.SecretBox` over Fernet keys (the first seals).

    Args:
        keys: Fernet keys, newest first.
        where: where the keys came from, for error messages.
        reload: reads the keys again (from the key file), or ``None``.
    """

    def __init__(
        self, keys: list[str], where: str, reload: Callable[[], list[str]] | None = None
    ) -> None:
        self.where, self._reload = where, reload
        self._fernet = self._build(keys)

    def _build(self, keys: list[str]) -> MultiFernet:
        if not keys:
            raise ConfigError(f"{self.where} holds no key")
        return MultiFernet([_fernet(k, self.where) for k in keys])

    def _refresh(self) -> None:
        if self._reload is not None:
            self._fernet = self._build(self._reload())

    def seal(self, plain: str) -> str:
        self._refresh()
        return self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            self._refresh()
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as err:
            raise ConfigError(
                f"a stored secret cannot be opened with the keys in {self.where}: "
                "was the key replaced or lost?"
            ) from err


class ServerKeys:
    """The keys of a server: from the environment, or from the key file.

    Args:
        keys: the keys, the first encrypts.
        file: the key file they came from (``None``: from the environment).
    """

    def __init__(self, keys: list[str], file: Path | None) -> None:
        self.keys, self.file = list(keys), file

    @property
    def where(self) -> str:
        return "MEDLOOP_SECRET_KEY" if self.file is None else str(self.file)

    @property
    def box(self) -> FernetBox:
        """A box over these keys (over the key file's current keys, when from a file)."""
        return FernetBox(self.keys, self.where, None if self.file is None else self._read)

    def _read(self) -> list[str]:
        assert self.file is not None
        return _read_keys(self.file)

    @classmethod
    def load(cls, env_keys: str | None, file: Path) -> ServerKeys:
        """The keys of ``MEDLOOP_SECRET_KEY`` when given, else of ``file`` (made when missing).

        Raises:
            ConfigError: a key that is not a Fernet key, or a key file others may read.
        """
        if env_keys:
            keys = [k.strip() for k in env_keys.split(",") if k.strip()]
            FernetBox(keys, "MEDLOOP_SECRET_KEY")  # validates
            return cls(keys, None)
        if not file.exists():
            _create_exclusive(file, new_key() + "\n")
        keys = _read_keys(file)
        FernetBox(keys, str(file))  # validates
        return cls(keys, file)

    def write(self, keys: list[str]) -> ServerKeys:
        """Replace the key file's keys (atomically, mode 0600); returns the new keys.

        Raises:
            ConfigError: the keys come from the environment, which medloop cannot change.
        """
        if self.file is None:
            raise ConfigError("the keys come from MEDLOOP_SECRET_KEY: change it there")
        FernetBox(keys, str(self.file))
        _replace(self.file, "".join(k + "\n" for k in keys))
        return ServerKeys(keys, self.file)


def _read_keys(file: Path) -> list[str]:
    mode = stat.S_IMODE(file.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"the secret key file {file} may be read by others (mode {mode:o}): chmod 600 {file}"
        )
    return [line.strip() for line in file.read_text().splitlines() if line.strip()]


def _write_temp(directory: Path, text: str) -> str:
    fd, tmp = tempfile.mkstemp(prefix=".secret.", suffix=".tmp", dir=directory)  # mode 0600
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    return tmp


def _create_exclusive(path: Path, text: str) -> None:
    """Create ``path`` with ``text`` (mode 0600) unless it exists; never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_temp(path.parent, text)
    try:
        os.link(tmp, path)  # fails if another process made it first: theirs is kept
    except FileExistsError:
        pass
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    fsync_dir(path.parent)


def _replace(path: Path, text: str) -> None:
    tmp = _write_temp(path.parent, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
