"""Shared fixtures: the installed command-line programs, run as a user runs them."""

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def run_cli(
    program: str, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / program), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """The contract for bad input: exit code 2, one `error:` line, no traceback."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def stored(run_dir: Path) -> tuple[list, list]:
    """A run's prompts and answers (`PromptRecord`s, `AnswerRecord`s), read through the
    store's own named queries, as `factory status` reads them."""
    from factory.store import RunStore

    store = RunStore.open(run_dir / "store.sqlite")
    try:
        return store.prompts(), store.answers()
    finally:
        store.close()


def assert_error_after_work(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """A failure met mid-run (an outage): progress lines, then one `error:` line last,
    exit code 2, no traceback."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in last


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path, monkeypatch):
    """Every test (and every command it starts) works in its own folder, never the repo."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def llm_server():
    """The local OpenAI-compatible server (tests/openai_server.py), fresh per test."""
    from openai_server import FakeOpenAI, ServerConfig

    server = FakeOpenAI(ServerConfig(api_key=TEST_KEY)).start()
    yield server
    server.stop()


# A key that looks real, so a test can search the run folder for it.
TEST_KEY = "sk-kahani-test-0123456789abcdefSECRET"


# A real browser for the HTML reports: Debian's Chromium driven by Playwright.
CHROMIUM = shutil.which("chromium")
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not CHROMIUM:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run does it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def artifacts(tmp_path) -> Path:
    folder = Path(os.environ.get("KAHANI_ARTIFACTS", tmp_path / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Page:
    """A report opened from file://, with every console error and page error collected."""

    def __init__(self, browser, path: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(path.resolve().as_uri())

    def rows(self) -> list[str]:
        return self.page.locator("table.rows tbody tr").all_inner_texts()

    def check_common(self, shot: Path) -> None:
        """Charts drawn, payloads inert, no errors; a full-page screenshot for people."""
        charts = self.page.locator("svg.chart")
        assert charts.count() > 0
        assert self.page.locator("svg.chart rect, svg.chart polyline").count() > 0
        assert self.page.evaluate("typeof window.pwned") == "undefined"
        assert self.page.locator("img[src=x]").count() == 0
        self.page.screenshot(path=shot, full_page=True)
        assert self.errors == []
