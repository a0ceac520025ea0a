"""Bad input, damaged files and interrupts across the command lines: one line on stderr, exit
code 2 (130 for an interrupt), and nothing already stored is lost or changed."""

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from conftest import BIN, TEST_KEY, assert_one_line_error, run_cli, stored

from factory.errors import KahaniError
from factory.store import Answer, RunStore

RUN = "hindi-gpt-4o-mini-seed0"


def folder_digest(folder: Path) -> str:
    """A hash of every file under `folder`: equal before and after means nothing changed.
    SQLite's shared-memory index (-shm) and an empty write-ahead log, which any reader of a
    WAL database sets up, hold no data and are left out."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name.endswith("-shm"):
            continue
        if path.name.endswith("-wal") and path.stat().st_size == 0:
            continue
        digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A small finished run against the stand-in server, to damage copies of."""
    from openai_server import FakeOpenAI, ServerConfig

    work = tmp_path_factory.mktemp("run")
    with FakeOpenAI(ServerConfig()) as server:
        done = run_cli(
            *("factory", "generate", "--lang", "hindi", "--n", "12", "--min-words", "20"),
            *("--base-url", server.base_url, "--runs-dir", str(work / "runs")),
        )
    assert done.returncode == 0, done.stderr
    return work / "runs" / RUN


def copy_of(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "runs" / run.name))


def generate(*args: str) -> subprocess.CompletedProcess:
    return run_cli("factory", "generate", "--lang", "hindi", "--dry-run", *args)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--rpm", "-10"], ["--rpm", "greater than 0"]),
        (["--rpm", "0"], ["--rpm", "greater than 0"]),
        (["--tpm", "-1"], ["--tpm", "greater than 0"]),
        (["--temperature", "5"], ["--temperature", "less than or equal to 2"]),
        (["--top-p", "7"], ["--top-p", "less than or equal to 1"]),
        (["--dedup-threshold", "2"], ["--dedup-threshold"]),
        (["--min-script-share", "1.5"], ["--min-script-share"]),
        (["--max-concurrency", "0"], ["--max-concurrency"]),
        (["--max-attempts", "0"], ["--max-attempts"]),
        (["--n", "0"], ["--n", "greater than or equal to 1"]),
        (["--n", "abc"], ["--n", "integer"]),
        (["--start", "-1"], ["--start"]),
        (["--min-words", "100", "--max-words", "50"], ["max_words (50) is below min_words (100)"]),
        (["--provider", "nope"], ["--provider"]),
        (["--timeout", "-3"], ["--timeout"]),
        (["--var", "turns=8"], ["--var turns", "no variable"]),
        (["--var", "=x"], ["--var expects key=value"]),
        (["--template", "missing.j2"], ["template missing.j2 does not exist"]),
        (["--vocab-dir", "missing"], ["word-list folder missing does not exist"]),
        (["--config", "missing.toml"], ["cannot read run file missing.toml"]),
        (["--column-map", "story=text"], ["--column-map", "needs --from-dataset"]),
        (["--column-map", "story"], ["--column-map expects key=value"]),
        (
            ["--from-dataset", "missing.jsonl", "--template", "translate/hindi.j2"],
            ["--from-dataset missing.jsonl does not exist"],
        ),
        (["--template", "translate/klingon.j2"], ["does not exist", "translate/hindi.j2"]),
    ],
)
def test_generate_flags_out_of_range_or_wrong_are_one_line(args, fragments):
    assert_one_line_error(generate(*args), *fragments)


def test_a_run_file_is_checked_by_the_same_rules_and_suggests_the_nearest_key(tmp_path):
    misspelled = tmp_path / "run.toml"
    misspelled.write_text('lang = "hindi"\ntemprature = 0.5\n', encoding="utf-8")
    assert_one_line_error(
        run_cli("factory", "generate", "--config", str(misspelled), "--dry-run"),
        "unknown setting 'temprature'",
        "did you mean 'temperature'",
    )
    out_of_range = tmp_path / "range.yaml"
    out_of_range.write_text("lang: hindi\nrpm: -5\n", encoding="utf-8")
    assert_one_line_error(
        run_cli("factory", "generate", "--config", str(out_of_range), "--dry-run"),
        "range.yaml: rpm",
        "greater than 0",
    )


def test_hinglish_turns_that_are_not_a_number_fail_before_anything_is_sent():
    result = run_cli("factory", "generate", "--lang", "hinglish", "--var", "turns=abc",
                     "--base-url", "http://127.0.0.1:9/v1")  # fmt: skip
    assert_one_line_error(result, "--var turns", "whole number", "'abc'")


def test_diversify_with_a_template_without_diversity_slots_is_one_line():
    result = run_cli("factory", "prompts", "--lang", "hinglish", "--diversify")
    assert_one_line_error(result, "--diversify", "declares no slots to draw")


def test_unknown_languages_commands_and_missing_values_are_one_line():
    assert_one_line_error(run_cli("factory", "prompts", "--lang", "klingon"), "unknown language")
    assert_one_line_error(run_cli("factory", "promts"), "No such command")
    assert_one_line_error(run_cli("factory", "generate", "--lang"), "--lang")
    assert_one_line_error(run_cli("judge", "score"), "Missing argument")
    assert_one_line_error(
        run_cli("factory", "prompts", "--lang", "english", "--n", "100000000"), "the maximum is"
    )


def test_outputs_that_cannot_be_written_are_one_line(finished_run, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    run = copy_of(finished_run, tmp_path)
    before = folder_digest(run)
    assert_one_line_error(
        run_cli("factory", "prompts", "--lang", "hindi", "--out", str(blocker / "p.jsonl")),
        "cannot write",
    )
    assert_one_line_error(
        run_cli("factory", "export", str(run), "--out", str(blocker / "dataset")),
        "cannot write the dataset",
    )
    assert_one_line_error(
        run_cli("factory", "report", str(run), "--out", str(blocker / "r.html")), "cannot write"
    )
    data = tmp_path / "stories.jsonl"
    data.write_text(json.dumps({"text": "एक कहानी"}) + "\n", encoding="utf-8")
    assert_one_line_error(
        run_cli("factory", "clean", str(data), "--lang", "hindi", "--out", str(blocker / "r")),
        "cannot create",
    )
    assert folder_digest(run) == before


def test_clean_names_what_is_missing():
    assert_one_line_error(
        run_cli("factory", "clean", "nowhere.jsonl"), "nowhere.jsonl does not exist"
    )
    assert_one_line_error(
        run_cli(
            "factory", "clean", str(Path(__file__).parent / "fixtures" / "corpus" / "hindi.jsonl")
        ),
        "give --lang",
    )
    assert_one_line_error(
        run_cli("factory", "export", "runs/none", "--validation", "0.9", "--test", "0.2"),
        "leave rows for train",
    )


@pytest.mark.parametrize("command", ["status", "stats", "export", "report"])
def test_an_empty_store_is_refused_never_recreated(finished_run, tmp_path, command):
    run = copy_of(finished_run, tmp_path)
    for side in run.glob("store.sqlite-*"):
        side.unlink()
    (run / "store.sqlite").write_bytes(b"")
    result = run_cli("factory", command, str(run))
    assert_one_line_error(result, "is empty (0 bytes)", "restore it")
    assert (run / "store.sqlite").read_bytes() == b""  # not silently made anew


@pytest.mark.parametrize("command", ["status", "stats", "export", "report", "resume"])
def test_a_damaged_store_is_refused_in_one_line(finished_run, tmp_path, command):
    run = copy_of(finished_run, tmp_path)
    store = run / "store.sqlite"
    db = sqlite3.connect(store)  # fold the WAL in, so the file alone holds the data
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = bytearray(store.read_bytes())
    data[4096:8192] = b"\xff" * 4096  # a page of garbage in the middle of the database
    store.write_bytes(bytes(data))
    before = folder_digest(run)
    if command == "resume":
        result = run_cli("factory", "generate", "--resume", str(run), "--api-key", TEST_KEY)
    else:
        result = run_cli("factory", command, str(run))
    assert_one_line_error(result, "damaged", "restore it from a copy")
    assert folder_digest(run) == before


def test_a_file_that_is_not_sqlite_is_refused(finished_run, tmp_path):
    run = copy_of(finished_run, tmp_path)
    (run / "store.sqlite").write_text("not a database at all", encoding="utf-8")
    assert_one_line_error(run_cli("factory", "status", str(run)), "not an SQLite database")


def test_reading_commands_never_write_to_the_store(finished_run, tmp_path):
    run = copy_of(finished_run, tmp_path)
    before = folder_digest(run)
    for command in ("status", "stats"):
        assert run_cli("factory", command, str(run)).returncode == 0
    assert folder_digest(run) == before


def test_a_full_disk_is_one_line_and_keeps_what_was_committed(tmp_path):
    store = RunStore.open(tmp_path / "store.sqlite", create=True)
    store.add_prompts([("p1", 0, {}, [], "k1"), ("p2", 1, {}, [], "k2")])
    answer = Answer("x" * 100, "stop", 1, 1, "m", "openai", 0.1, 1, 0.0, 0.0)
    store.save_answer("p1", "k1", answer)
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk is full"
    with pytest.raises(KahaniError, match="is full; nothing committed before is lost"):
        store.save_answer("p2", "k2", Answer("y" * 50_000, "stop", 1, 1, "m", "o", 0.1, 1, 0, 0))
    store.close()
    reopened = RunStore.open(tmp_path / "store.sqlite")
    assert [r.prompt_id for r in reopened.answers()] == ["p1"]
    reopened.close()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--n", "0"], ["--n", "greater than or equal to 1"]),
        (["--n", "-3"], ["--n"]),
        (["--samples", "0"], ["--samples"]),
        (["--temperature", "-1"], ["--temperature"]),
        (["--max-tokens", "0"], ["--max-tokens"]),
        (["--top-p", "0"], ["--top-p"]),
        (["--controls", "-1"], ["--controls"]),
        (["--judge", "gpt-4o"], ["--judge expects provider:model"]),
        (["--judge-batch"], ["--judge-batch needs --judge"]),
        (["--lang", "klingon"], ["unknown language"]),
    ],
)
def test_judge_score_options_are_checked_before_any_work(args, fragments, tmp_path):
    model = "openai:gpt-4o-mini"
    result = run_cli("judge", "score", model, "--lang", "hindi", "--base-url", "http://x", *args)
    assert_one_line_error(result, *fragments)


def test_a_scored_api_model_without_a_key_is_named_not_the_judge(tmp_path):
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path)}
    result = run_cli("judge", "score", "openai:gpt-4o-mini", "--lang", "hindi", env=env)
    assert_one_line_error(result, "the scored model openai:gpt-4o-mini needs --api-key")
    judged = run_cli(
        "judge", "score", "openai:gpt-4o-mini", "--lang", "hindi", "--base-url", "http://x",
        "--judge", "openai:gpt-4o", env=env,
    )  # fmt: skip
    assert_one_line_error(judged, "the judge openai:gpt-4o needs --judge-api-key")


def test_judge_report_and_compare_name_the_folder_they_cannot_use(tmp_path):
    assert_one_line_error(run_cli("judge", "report", "nowhere"), "nowhere is not an evaluation")
    assert_one_line_error(run_cli("judge", "compare", "one"), "at least two")
    assert_one_line_error(run_cli("judge", "compare", "a", "b"), "a is not an evaluation folder")


def test_every_command_line_tells_its_version():
    for program in ("factory", "judge", "trainer"):
        result = run_cli(program, "--version")
        assert result.returncode == 0 and result.stdout.startswith("kahani "), program


def test_a_dry_run_does_not_depend_on_an_earlier_run(finished_run, tmp_path):
    run = copy_of(finished_run, tmp_path)
    result = run_cli(
        "factory", "generate", "--lang", "hindi", "--dry-run", "--max-tokens", "99",
        "--runs-dir", str(run.parent),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr  # the stored run asked for 1024 tokens


def test_progress_is_printed_when_stderr_is_not_a_terminal(llm_server, tmp_path):
    llm_server.config.latency = 0.3
    env = {**os.environ, "KAHANI_PROGRESS_SECONDS": "0.5"}
    result = run_cli(
        *("factory", "generate", "--lang", "hindi", "--n", "20", "--min-words", "20"),
        *("--base-url", llm_server.base_url, "--api-key", TEST_KEY, "--max-concurrency", "2"),
        *("--runs-dir", str(tmp_path / "runs")),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith(RUN)]
    assert len(lines) >= 4  # the start, lines every half second, the end
    assert "20 to send" in lines[0] and "20/20 done" in lines[-1]
    assert any("/min" in line and "ETA" in line for line in lines[1:-1])


def test_a_second_ctrl_c_leaves_at_once_and_the_store_stays_sound(llm_server, tmp_path):
    llm_server.config.latency = 8  # requests in flight would hold the first Ctrl-C for 8 s
    args = [
        str(BIN / "factory"),
        *("generate", "--lang", "hindi", "--n", "30", "--base-url", llm_server.base_url),
        *("--api-key", TEST_KEY, "--runs-dir", str(tmp_path / "runs")),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while llm_server.stats.in_flight == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - started < 3
    assert proc.returncode == 130 and "Traceback" not in err
    status = run_cli("factory", "status", str(tmp_path / "runs" / RUN))
    assert status.returncode == 0 and "30 pending" in status.stdout


def test_ctrl_c_during_a_local_model_run_stops_in_seconds_and_keeps_its_answers(tmp_path):
    from test_local_provider import build_tiny_model

    model = build_tiny_model(tmp_path / "tiny")  # never emits its end token: runs to the limit
    runs = tmp_path / "runs"
    args = [
        str(BIN / "factory"),
        *("generate", "--lang", "english", "--n", "6", "--provider", "local"),
        *("--model", str(model), "--max-tokens", "400", "--batch-size", "1", "--temperature", "0"),
        *("--max-concurrency", "1", "--runs-dir", str(runs), "--no-export"),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # two answers kept, the third being decoded
        run = next(runs.iterdir(), None) if runs.exists() else None
        try:
            if run and len(stored(run)[1]) >= 2:
                break
        except KahaniError:
            pass  # the store is being created
        time.sleep(0.2)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - started < 10, "Ctrl-C took too long"
    assert proc.returncode == 130, err
    assert "resume" in err and "Traceback" not in err
    prompts, answers = stored(run)
    assert len(answers) >= 2 and all(a.answer.completion_tokens == 400 for a in answers)
    assert {p.status for p in prompts} == {"pending", "done"}  # the cut-off one is pending
