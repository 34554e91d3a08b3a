"""Benchmarks: accuracy on the shared datasets and the simulated-clinician loop.

They print tables and write JSON; they never pass or fail.
"""
