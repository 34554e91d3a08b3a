"""The model registry: immutable version directories plus a production pointer."""

from medloop.registry.model_registry import ModelRegistry, VersionRecord

__all__ = ["ModelRegistry", "VersionRecord"]
