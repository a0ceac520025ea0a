"""Shared fixtures: the installed command-line programs, run as a user runs them."""

import subprocess
import sys
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
