"""``medloop remote ...`` against a fake client (the ``_client`` factory is patched)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from medloop.cli import remote
from medloop.client import (
    AnalysisOut,
    BadRequest,
    CorrectionOut,
    JobOut,
    MedloopClient,
    ModelVersionOut,
    NotFound,
    Page,
    ReviewItemOut,
    ServerError,
    TransportError,
    Unauthorized,
)

from .conftest import PNG, analysis, correction, image, job, model_version

runner = CliRunner()
ENV = {"MEDLOOP_TOKEN": "tok", "COLUMNS": "250"}


class FakeClient:
    """Stands in for MedloopClient; records calls, answers from canned models."""

    def __init__(self, server: str, token: str) -> None:
        self.server = server
        self.token = token
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.closed = False
        self.fail: dict[str, Exception] = {}
        self.jobs: list[JobOut] = [JobOut.model_validate(job(state="succeeded", progress=1.0))]
        self.correction = CorrectionOut.model_validate(correction())

    def _call(self, name: str, *args: Any, **kw: Any) -> None:
        self.calls.append((name, args, kw))
        if name in self.fail:
            raise self.fail[name]

    def close(self) -> None:
        self.closed = True

    def analyze(self, project: str, **kw: Any) -> AnalysisOut:
        self._call("analyze", project, **kw)
        if Path(kw["file"]).name == "bad.png":
            raise BadRequest(400, "bad_image", "not an image: bytes do not match any format")
        n = sum(1 for c in self.calls if c[0] == "analyze")
        return AnalysisOut.model_validate(
            analysis(id=f"a{n}", model_version=kw.get("version") or "v0001")
        )

    def analysis_mask(self, project: str, a: str) -> bytes:
        self._call("analysis_mask", project, a)
        return PNG + b"mask"

    def analysis_overlay(self, project: str, a: str) -> bytes:
        self._call("analysis_overlay", project, a)
        return PNG + b"overlay"

    def correct(self, project: str, a: str, mask: Path) -> CorrectionOut:
        self._call("correct", project, a, mask)
        return self.correction

    def list_models(self, project: str) -> Page[ModelVersionOut]:
        self._call("list_models", project)
        return Page[ModelVersionOut].model_validate(
            {
                "items": [
                    model_version(),
                    model_version(
                        version="v0002",
                        status="rejected",
                        parent="v0001",
                        kind="finetune",
                        metrics={
                            "locked_val": {"mean_dice": 0.9},
                            "heldout_corrections": {"mean_dice": 0.8},
                        },
                    ),
                ]
            }
        )

    def list_jobs(self, project: str) -> Page[JobOut]:
        self._call("list_jobs", project)
        return Page[JobOut].model_validate(
            {
                "items": [
                    job(id="job-42", state="running", progress=0.4),
                    job(id="job-41", state="failed", error="out of memory"),
                ]
            }
        )

    def wait_for_job(
        self,
        project: str,
        j: str,
        *,
        timeout: float,
        poll: float,
        on_update: Callable[[JobOut], None],
    ) -> JobOut:
        self._call("wait_for_job", project, j, timeout=timeout, poll=poll)
        for state in self.jobs:
            on_update(state)
        return self.jobs[-1]

    def review_queue(self, project: str, limit: int) -> Page[ReviewItemOut]:
        self._call("review_queue", project, limit=limit)
        return Page[ReviewItemOut].model_validate(
            {
                "items": [
                    {
                        "analysis": analysis(id="a-uncertain", uncertainty=0.9),
                        "image": image(filename="hard.png"),
                    }
                ],
                "total": 7,
            }
        )


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> list[FakeClient]:
    made: list[FakeClient] = []

    def factory(server: str, token: str) -> FakeClient:
        made.append(FakeClient(server, token))
        return made[-1]

    monkeypatch.setattr(remote, "_client", factory)
    return made


def run(args: list[str], env: dict[str, str] | None = None) -> Result:
    return runner.invoke(remote.remote_app, args, env=ENV if env is None else env)


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    paths = []
    for name in ("one.png", "two.png"):
        p = tmp_path / name
        p.write_bytes(PNG)
        paths.append(p)
    return paths


def test_analyze_prints_a_table(fake: list[FakeClient], images: list[Path]) -> None:
    res = run(
        ["analyze", *map(str, images), "--project", "retina", "--server", "https://medloop.test"]
    )
    assert res.exit_code == 0, res.output
    (c,) = fake
    assert (c.server, c.token) == ("https://medloop.test", "tok")
    assert c.closed
    assert [call[1:] for call in c.calls] == [
        (("retina",), {"file": images[0], "version": None}),
        (("retina",), {"file": images[1], "version": None}),
    ]
    for text in ("one.png", "two.png", "a1", "a2", "v0001", "0.125", "disc", "321", "3.21"):
        assert text in res.stdout
    assert "analysed 2 of 2 images" in res.stdout


def test_analyze_saves_masks_and_overlays(
    fake: list[FakeClient], images: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "results"
    res = run(
        [
            "analyze",
            str(images[0]),
            str(images[0]),
            "-p",
            "retina",
            "--out",
            str(out),
            "--version",
            "v0003",
        ]
    )
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "one-a2_analysis.json",
        "one-a2_mask.png",
        "one-a2_overlay.png",
        "one_analysis.json",
        "one_mask.png",
        "one_overlay.png",
    ]
    assert (out / "one_mask.png").read_bytes() == PNG + b"mask"
    assert (out / "one_overlay.png").read_bytes() == PNG + b"overlay"
    saved = json.loads((out / "one_analysis.json").read_text())
    assert saved["id"] == "a1" and saved["model_version"] == "v0003"


def test_analyze_goes_on_past_a_refused_image(
    fake: list[FakeClient], images: list[Path], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    res = run(["analyze", str(bad), str(images[0]), "-p", "retina"])
    assert res.exit_code == 2
    assert "error: " in res.stderr and "bad.png" in res.stderr and "not an image" in res.stderr
    assert "one.png" in res.stdout and "analysed 1 of 2 images" in res.stdout


def test_analyze_missing_image_exits_2(fake: list[FakeClient], tmp_path: Path) -> None:
    res = run(["analyze", str(tmp_path / "nope.png"), "-p", "retina"])
    assert res.exit_code == 2
    assert "does not exist" in res.stderr
    assert not fake


@pytest.mark.parametrize(
    "cmd", [["analyze", "x.png"], ["correct", "a1", "m.png"], ["models"], ["jobs"], ["review"]]
)
def test_missing_token_exits_2_with_one_line(
    fake: list[FakeClient], cmd: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.png").write_bytes(PNG)
    (tmp_path / "m.png").write_bytes(PNG)
    monkeypatch.delenv("MEDLOOP_TOKEN", raising=False)
    res = run([*cmd, "-p", "retina"], env={"COLUMNS": "250"})
    assert res.exit_code == 2
    assert res.stderr.strip().startswith("error: set MEDLOOP_TOKEN")
    assert len(res.stderr.strip().splitlines()) == 1
    assert not fake


def test_server_comes_from_env_or_defaults(
    fake: list[FakeClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MEDLOOP_SERVER", raising=False)
    assert run(["models", "-p", "retina"]).exit_code == 0
    assert fake[-1].server == "http://127.0.0.1:8000"
    assert (
        run(["models", "-p", "retina"], env=ENV | {"MEDLOOP_SERVER": "https://env.test"}).exit_code
        == 0
    )
    assert fake[-1].server == "https://env.test"
    assert run(["models"], env=ENV | {"MEDLOOP_PROJECT": "knee"}).exit_code == 0
    assert fake[-1].calls[0][1] == ("knee",)
    assert (
        run(["models", "-p", "retina", "--token", "flag-token"], env={"COLUMNS": "250"}).exit_code
        == 0
    )
    assert fake[-1].token == "flag-token"


def test_correct_prints_dice_and_countdown(fake: list[FakeClient], tmp_path: Path) -> None:
    mask = tmp_path / "fixed.png"
    mask.write_bytes(PNG)
    res = run(["correct", "a1", str(mask), "-p", "retina"])
    assert res.exit_code == 0, res.output
    assert fake[0].calls == [("correct", ("retina", "a1", mask), {})]
    assert "Dice 0.8765" in res.stdout
    assert "3 more corrections until the next fine-tune" in res.stdout


def test_correct_reports_a_started_finetune(
    fake: list[FakeClient], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mask = tmp_path / "fixed.png"
    mask.write_bytes(PNG)
    started = CorrectionOut.model_validate(
        correction(corrections_until_finetune=10, finetune_job_id="job-9", held_out=True)
    )
    off = CorrectionOut.model_validate(correction(corrections_until_finetune=None))
    real = remote._client

    def with_answer(answer: CorrectionOut) -> None:
        def factory(server: str, token: str) -> FakeClient:
            c = real(server, token)
            assert isinstance(c, FakeClient)
            c.correction = answer
            return c

        monkeypatch.setattr(remote, "_client", factory)

    with_answer(started)
    res = run(["correct", "a1", str(mask), "-p", "retina"])
    assert res.exit_code == 0, res.output
    assert "fine-tune job job-9 started" in res.stdout
    assert "held out" in res.stdout
    with_answer(off)
    res = run(["correct", "a1", str(mask), "-p", "retina"])
    assert "automatic fine-tuning is off" in res.stdout


def test_correct_missing_mask_exits_2(fake: list[FakeClient], tmp_path: Path) -> None:
    res = run(["correct", "a1", str(tmp_path / "none.png"), "-p", "retina"])
    assert res.exit_code == 2 and "mask" in res.stderr


def test_models_table(fake: list[FakeClient]) -> None:
    res = run(["models", "-p", "retina"])
    assert res.exit_code == 0, res.output
    for text in (
        "v0001",
        "production",
        "v0002",
        "rejected",
        "finetune",
        "0.9123",
        "0.9000",
        "0.8000",
    ):
        assert text in res.stdout


def test_jobs_table(fake: list[FakeClient]) -> None:
    res = run(["jobs", "-p", "retina"])
    assert res.exit_code == 0, res.output
    for text in ("job-42", "running", "40%", "job-41", "failed", "out of memory"):
        assert text in res.stdout


def test_jobs_watch_success(fake: list[FakeClient], monkeypatch: pytest.MonkeyPatch) -> None:
    def setup(server: str, token: str) -> FakeClient:
        c = FakeClient(server, token)
        c.jobs = [
            JobOut.model_validate(job(state="queued")),
            JobOut.model_validate(job(state="running", progress=0.5)),
            JobOut.model_validate(job(state="running", progress=0.5)),
            JobOut.model_validate(
                job(state="succeeded", progress=1.0, result={"version": "v0002", "promoted": True})
            ),
        ]
        fake.append(c)
        return c

    monkeypatch.setattr(remote, "_client", setup)
    res = run(["jobs", "-p", "retina", "--watch", "j1", "--timeout", "30", "--poll", "0.5"])
    assert res.exit_code == 0, res.output
    assert fake[-1].calls == [("wait_for_job", ("retina", "j1"), {"timeout": 30.0, "poll": 0.5})]
    lines = res.stdout.splitlines()
    assert lines[:3] == [
        "job j1 (finetune): queued 0%",
        "job j1 (finetune): running 50%",
        "job j1 (finetune): succeeded 100%",
    ]
    assert "version: v0002" in res.stdout


def test_jobs_watch_failure_exits_1(
    fake: list[FakeClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    def setup(server: str, token: str) -> FakeClient:
        c = FakeClient(server, token)
        c.jobs = [JobOut.model_validate(job(state="failed", error="CUDA out of memory"))]
        return c

    monkeypatch.setattr(remote, "_client", setup)
    res = run(["jobs", "-p", "retina", "--watch", "j1"])
    assert res.exit_code == 1
    assert "error: job j1 failed: CUDA out of memory" in res.stderr


def test_review_queue(fake: list[FakeClient]) -> None:
    res = run(["review", "-p", "retina", "--limit", "5"])
    assert res.exit_code == 0, res.output
    assert fake[0].calls == [("review_queue", ("retina",), {"limit": 5})]
    for text in ("a-uncertain", "hard.png", "0.900", "7 analyses waiting"):
        assert text in res.stdout


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (Unauthorized(401, "unauthorized", "unknown token"), 2),
        (NotFound(404, "not_found", "no project retina"), 2),
        (BadRequest(422, "invalid", "limit too large"), 2),
        (ServerError(500, "internal", "database is locked"), 1),
        (TransportError("GET http://x failed: connection refused"), 1),
    ],
)
def test_client_errors_become_one_red_line(
    fake: list[FakeClient], monkeypatch: pytest.MonkeyPatch, exc: Exception, code: int
) -> None:
    def failing(server: str, token: str) -> FakeClient:
        c = FakeClient(server, token)
        c.fail["list_models"] = exc
        fake.append(c)
        return c

    monkeypatch.setattr(remote, "_client", failing)
    res = run(["models", "-p", "retina"])
    assert res.exit_code == code
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0] == f"error: {exc}"
    assert fake[-1].closed


def test_real_factory_builds_a_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDLOOP_CA_BUNDLE", raising=False)
    c = remote._client("https://medloop.test", "tok")
    assert isinstance(c, MedloopClient)
    c.close()


def test_bad_server_url_and_missing_ca_bundle_exit_2() -> None:
    res = run(["models", "-p", "retina", "--server", "medloop.test"])
    assert res.exit_code == 2 and "http:// or https://" in res.stderr
    res = run(
        ["models", "-p", "retina", "--server", "https://medloop.test"],
        env=ENV | {"MEDLOOP_CA_BUNDLE": "/nope/ca.pem"},
    )
    assert res.exit_code == 2 and "CA bundle" in res.stderr


def test_unreachable_server_exits_1() -> None:
    res = run(["models", "-p", "retina", "--server", "http://127.0.0.1:1"])
    assert res.exit_code == 1
    assert res.stderr.startswith(
        "error: GET http://127.0.0.1:1/api/v1/projects/retina/models failed"
    )


def test_remote_app_is_a_typer_app() -> None:
    assert isinstance(remote.remote_app, typer.Typer)
    res = runner.invoke(remote.remote_app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("analyze", "correct", "models", "jobs", "review"):
        assert cmd in res.stdout


def test_server_text_is_never_rich_markup(
    fake: list[FakeClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    def odd(server: str, token: str) -> FakeClient:
        c = FakeClient(server, token)
        c.fail["review_queue"] = NotFound(404, "not_found", "no [bold]project[/bold]\nsecond line")
        return c

    monkeypatch.setattr(remote, "_client", odd)
    res = run(["review", "-p", "retina"])
    assert res.exit_code == 2
    assert res.stderr.strip() == "error: no [bold]project[/bold] second line (HTTP 404, not_found)"

    class Named(FakeClient):
        def review_queue(self, project: str, limit: int) -> Page[ReviewItemOut]:
            return Page[ReviewItemOut].model_validate(
                {"items": [{"analysis": analysis(), "image": image(filename="[red]x[/red].png")}]}
            )

    monkeypatch.setattr(remote, "_client", Named)
    res = run(["review", "-p", "retina"])
    assert res.exit_code == 0, res.output
    assert "[red]x[/red].png" in res.stdout
