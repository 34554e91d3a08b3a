"""The ML engine: torch + MONAI only. Knows no HTTP, no SQL.

Import submodules directly (``medloop.ml.trainer``); this package imports nothing heavy.
"""
