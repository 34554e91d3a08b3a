"""Simulated-clinician benchmark; same as ``medloop bench loop`` (see ``--help``)."""

from medloop.cli.bench import bench_app

if __name__ == "__main__":
    import sys

    sys.argv.insert(1, "loop")
    bench_app()
