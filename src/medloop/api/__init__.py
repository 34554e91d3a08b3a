"""The HTTP API (FastAPI). Knows no torch: model work goes through services and pools."""

from medloop.api.app import create_app

__all__ = ["create_app"]
