"""The port through which secrets are kept at rest: :class:`SecretBox`.

A secret (a PACS password or token, a de-identification key) is stored only as the
box's sealed text; the key that opens it lives outside the database (see
:mod:`medloop.storage.secret_keys`), so a database dump alone reveals nothing.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["SecretBox"]


class SecretBox(Protocol):
    """Seal and open short secrets with a server key."""

    def seal(self, plain: str) -> str:
        """``plain`` encrypted and authenticated, as printable text."""
        ...

    def open(self, sealed: str) -> str:
        """The plain text of a :meth:`seal` result.

        Raises:
            ConfigError: the text was not sealed with any of the box's keys.
        """
        ...
