"""Browser tests: Debian's Chromium, driven by Playwright, against a real ``medloop serve``.

Chromium comes from Debian (``scripts/install-browser.sh``), never from
``playwright install``. Screenshots go to ``tests/e2e/artifacts/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .server import LiveServer, start_server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
VIEWPORT = {"width": 1360, "height": 860}

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (dev extra)")
if not CHROMIUM.exists():  # pragma: no cover - depends on the machine
    pytest.skip(
        "Debian's Chromium is missing: run scripts/install-browser.sh", allow_module_level=True
    )


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = start_server(tmp_path_factory.mktemp("e2e"))
    try:
        yield srv
    finally:
        srv.stop()
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "serve.log").write_text(srv.log_tail(200_000))


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield b
        finally:
            b.close()


class Session:
    """One signed-in browser tab, with the console watched for CSP violations and errors."""

    def __init__(self, page: Any, server: LiveServer, who: str) -> None:
        self.page, self.server, self.who = page, server, who
        self.problems: list[str] = []
        page.on("pageerror", lambda err: self.problems.append(f"page error: {err}"))
        page.on("console", self._console)

    def _console(self, msg: Any) -> None:
        text = msg.text
        if msg.type == "error" and (
            "Content Security Policy" in text or "Refused to" in text or "Uncaught" in text
        ):
            self.problems.append(f"console: {text}")

    def sign_in(self) -> Session:
        p = self.page
        p.goto(self.server.url + "/")
        p.get_by_test_id("token-input").fill(self.server.tokens[self.who])
        p.get_by_test_id("signin-submit").click()
        p.get_by_test_id("user-role").wait_for()
        return self

    def go(self, hash_: str) -> None:
        self.page.evaluate("h => { location.hash = h; }", hash_)

    def open_analysis(self, analysis_id: str) -> Any:
        self.go(f"#/viewer/{analysis_id}")
        stage = self.page.locator("canvas[data-testid=stage][data-ready='1']")
        stage.wait_for(timeout=15_000)
        return stage

    def shot(self, name: str, full_page: bool = False) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.evaluate("() => document.getElementById('toasts')?.replaceChildren()")
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


def signed_in_tabs(
    browser: Any, server: LiveServer, timeout_ms: int = 15_000
) -> Iterator[Callable[[str], Session]]:
    """``make(who)``: a new signed-in tab of ``server`` for each call; each tab's console is
    checked for CSP violations and errors when the caller is done."""
    contexts: list[Any] = []
    sessions: list[Session] = []

    def make(who: str) -> Session:
        ctx = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
        ctx.set_default_timeout(timeout_ms)
        contexts.append(ctx)
        s = Session(ctx.new_page(), server, who)
        sessions.append(s)
        return s.sign_in()

    yield make
    problems = [p for s in sessions for p in s.problems]
    for ctx in contexts:
        ctx.close()
    assert not problems, "\n".join(problems)


@pytest.fixture
def session(browser: Any, server: LiveServer) -> Iterator[Callable[[str], Session]]:
    yield from signed_in_tabs(browser, server)
