"""The one LLM entry point under real conditions: keys go only where they were given, a
server that says 429 for a while or hangs loses nothing, the judge can use the Batch API,
and limits that make no sense are refused in one line."""

import json
import subprocess
import time

import pytest
from conftest import BIN, TEST_KEY, assert_error_after_work, assert_one_line_error, run_cli
from openai_server import FakeOpenAI, ServerConfig

from factory.llm import api_key_for

MODEL_KEY = "sk-model-key-1111"
JUDGE_KEY = "sk-judge-key-2222"
ENV_KEY = "sk-environment-key-3333"


def test_keys_from_the_environment_go_only_to_openai_or_the_base_url_they_were_set_up_for():
    env = {"OPENAI_API_KEY": ENV_KEY}
    assert api_key_for(None, None, env) == ENV_KEY  # OpenAI's own API
    assert api_key_for("http://127.0.0.1:8000/v1", None, env) is None  # someone else's server
    assert api_key_for("https://api.openai.com/v1/", None, env) == ENV_KEY
    assert api_key_for("http://127.0.0.1:8000/v1", "given", env) == "given"
    with_base = {**env, "OPENAI_BASE_URL": "http://10.0.0.5:8000/v1"}
    assert api_key_for("http://10.0.0.5:8000/v1", None, with_base) == ENV_KEY


def test_the_scored_model_and_the_judge_each_get_only_their_own_key(tiny_story_prompts, tmp_path):
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "OPENAI_API_KEY": ENV_KEY}
    with FakeOpenAI(ServerConfig()) as model_server, FakeOpenAI(ServerConfig()) as judge_server:
        result = run_cli(
            "judge",
            "score",
            "openai:gpt-4o-mini",
            *("--base-url", model_server.base_url, "--api-key", MODEL_KEY),
            *("--lang", "hindi", "--prompts", str(tiny_story_prompts), "--samples", "1"),
            *("--judge", "openai:gpt-4o", "--judge-base-url", judge_server.base_url),
            *("--judge-api-key", JUDGE_KEY, "--controls", "1", "--out", "eval"),
            env=env,
        )
        assert result.returncode == 0, result.stderr
        generated = run_cli(
            "factory",
            "generate",
            *("--lang", "hindi", "--n", "2", "--base-url", model_server.base_url),
            *("--min-words", "20"),
            env=env,
        )
        assert generated.returncode == 0, generated.stderr
        seen_by_model = set(model_server.stats.authorizations)
        seen_by_judge = set(judge_server.stats.authorizations)
    assert seen_by_model == {f"Bearer {MODEL_KEY}", "Bearer not-needed"}
    assert seen_by_judge == {f"Bearer {JUDGE_KEY}"}
    assert not any(ENV_KEY in header for header in seen_by_model | seen_by_judge)


@pytest.fixture
def tiny_story_prompts(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("एक दिन राजू बाज़ार गया।\nगाँव में एक बूढ़ा किसान था।\n", encoding="utf-8")
    return path


def generate(server, tmp_path, *args: str) -> subprocess.CompletedProcess:
    return run_cli(
        "factory",
        "generate",
        *("--lang", "hindi", "--base-url", server.base_url, "--api-key", TEST_KEY),
        *("--runs-dir", str(tmp_path / "runs"), "--min-words", "20"),
        *args,
    )


def test_a_server_that_says_429_for_a_while_loses_nothing_and_is_not_hammered(llm_server, tmp_path):
    storm_until = time.monotonic() + 8
    llm_server.config.retry_after_s = 0.5
    llm_server.config.fault = lambda n, body: "429" if time.monotonic() < storm_until else None
    started = time.monotonic()
    result = generate(llm_server, tmp_path, "--n", "30", "--max-attempts", "2")
    assert result.returncode == 0, result.stderr
    assert "30 done, 0 failed, 0 pending" in result.stdout
    assert time.monotonic() - started >= 8  # it waited the storm out...
    stats = llm_server.stats
    assert stats.completions == 30  # ...then asked each prompt once
    # During 8 s of 429s, a handful of probes: not 30 requests spinning every half second.
    assert stats.faults["429"] < 40, stats.faults


def test_a_server_with_no_quota_stops_the_run_at_once_and_loses_nothing(llm_server, tmp_path):
    llm_server.config.fault = lambda n, body: "quota"
    result = generate(llm_server, tmp_path, "--n", "20")
    assert_error_after_work(result, "no quota left", "run the same command again")
    assert llm_server.stats.chat_requests < 20
    status = run_cli("factory", "status", str(tmp_path / "runs" / "hindi-gpt-4o-mini-seed0"))
    assert "0 done, 0 failed, 20 pending" in status.stdout


def test_a_hanging_server_times_out_is_retried_and_reported_as_an_outage(llm_server, tmp_path):
    llm_server.config.fault = lambda n, body: "timeout"
    llm_server.config.hang_seconds = 30
    started = time.monotonic()
    result = generate(llm_server, tmp_path, "--n", "10", "--timeout", "0.5", "--max-attempts", "2")
    assert_error_after_work(result, "did not answer", "resume")
    assert time.monotonic() - started < 60
    assert llm_server.stats.faults["timeout"] >= 3 * 2  # three prompts, two attempts each


@pytest.mark.parametrize(
    ("flag", "value", "fragment"),
    [
        ("--max-concurrency", "0", "--max-concurrency: input should be greater than or equal to 1"),
        ("--rpm", "-10", "--rpm: input should be greater than 0"),
        ("--rpm", "0", "--rpm: input should be greater than 0"),
        ("--tpm", "-1", "--tpm: input should be greater than 0"),
        ("--timeout", "0", "--timeout: input should be greater than 0"),
        ("--max-attempts", "0", "--max-attempts"),
    ],
)
def test_limits_that_make_no_sense_are_one_line_errors(flag, value, fragment, tmp_path):
    result = run_cli("factory", "generate", "--lang", "hindi", "--dry-run", flag, value)
    assert_one_line_error(result, fragment)


def test_the_offline_default_says_it_writes_english_before_spending_cpu(tmp_path):
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path)}
    result = run_cli("factory", "generate", "--lang", "marathi", "--n", "5", env=env)
    assert_one_line_error(result, "writes English only", "--base-url", "Ollama")
    assert not (tmp_path / "runs").exists()


def test_the_judge_can_judge_through_the_batch_api_and_a_second_run_sends_nothing(
    llm_server, tiny_story_prompts, tmp_path
):
    llm_server.config.batch_seconds = 0.2
    command = [
        *("judge", "score", "openai:gpt-4o-mini", "--base-url", llm_server.base_url),
        *("--api-key", TEST_KEY, "--lang", "hindi", "--prompts", str(tiny_story_prompts)),
        *("--samples", "2", "--controls", "1", "--judge", "openai:gpt-4o"),
        *("--judge-base-url", llm_server.base_url, "--judge-api-key", TEST_KEY),
        *("--judge-batch", "--batch-poll-seconds", "0.2", "--out", "eval"),
    ]
    result = run_cli(*command)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text(encoding="utf-8"))
    assert summary["judge"]["parse_failure_rate"] == 0
    assert llm_server.stats.batches_created >= 1
    assert llm_server.stats.batch_requests_answered >= 4  # 4 completions (+ controls)
    served = (llm_server.stats.chat_requests, llm_server.stats.batches_created)
    again = run_cli(*command)
    assert again.returncode == 0, again.stderr
    assert (llm_server.stats.chat_requests, llm_server.stats.batches_created) == served
