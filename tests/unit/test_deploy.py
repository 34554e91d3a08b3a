"""deploy/compose.yaml stays true to the code: real settings, real queues, shared blobs."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from medloop.jobs.dispatch import QUEUES
from medloop.settings import Settings

yaml = pytest.importorskip("yaml")

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _compose(name: str) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((DEPLOY / name).read_text())


def _medloop_services(compose: dict) -> dict:  # type: ignore[type-arg]
    return {
        name: svc
        for name, svc in compose["services"].items()
        if "medloop" in " ".join(svc.get("command", []))
    }


def test_every_medloop_service_shares_the_database_the_broker_and_the_blobs() -> None:
    compose = _compose("compose.yaml")
    medloop = _medloop_services(compose)
    assert {"api", "worker-train", "worker-analyze"} <= set(medloop)
    assert {"postgres", "redis", "orthanc", "proxy"} <= set(compose["services"])
    assert compose["services"]["api"]["deploy"]["replicas"] == 2
    fields = set(Settings.model_fields)
    for name, svc in medloop.items():
        env = svc["environment"]
        assert env["MEDLOOP_DATABASE_URL"].startswith("postgresql+psycopg://"), name
        assert env["MEDLOOP_BROKER_URL"].startswith("redis://"), name
        assert "blobs:/data" in svc["volumes"] and env["MEDLOOP_DATA_DIR"] == "/data", name
        unknown = {k for k in env if k.startswith("MEDLOOP_")} - {
            f"MEDLOOP_{f.upper()}" for f in fields
        }
        assert not unknown, f"{name}: {unknown} are not settings"


def _option(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_workers_take_real_queues_and_the_api_runs_no_worker() -> None:
    medloop = _medloop_services(_compose("compose.yaml"))
    assert "--no-worker" in medloop["api"]["command"]
    taken: set[str] = set()
    for name, svc in medloop.items():
        cmd = svc["command"]
        if "worker" in cmd[:2]:
            queues = set(_option(cmd, "--queues").split(","))
            assert queues <= set(QUEUES), name
            taken |= queues
    assert taken == set(QUEUES)  # every queue has a worker
    gpu = _compose("compose.gpu.yaml")["services"]["worker-gpu"]
    assert _option(gpu["command"], "--queues") == "train"
    assert gpu["environment"]["MEDLOOP_DEVICE"] == "cuda"
    assert shlex.join(gpu["command"]).startswith("medloop worker")
