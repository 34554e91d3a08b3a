"""Use cases: train, analyse, learn from corrections, evaluate. Called by the CLI (and later the API).

Services reach the ML engine (torch) through :mod:`medloop.ml` lazily, inside functions.
"""
