"""The ``medloop`` command line (Typer). Heavy imports happen inside commands."""

from medloop.cli.app import app, main

__all__ = ["app", "main"]
