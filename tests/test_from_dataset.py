"""Prompts from a dataset (`factory generate --from-dataset PATH --template T.j2`): one prompt
per row, ids from the row's content, resume and never-repay as for word lists, bad rows
rejected with reasons, damaged files and unknown columns as one-line errors."""

import csv
import json
import signal
import subprocess
import time
from pathlib import Path

import datasets
import pytest
from conftest import BIN, TEST_KEY, assert_one_line_error, run_cli, stored

from factory.prompts import prompt_id

SENTENCES = [
    "A little fox lived near the river.",
    "Every morning it drank the cold water.",
    "One day it met a slow old turtle.",
    "The turtle told it about the sea.",
    "The fox wanted to see the sea too.",
    "They walked together for many days.",
    "At last they saw the big blue water.",
    "The fox was very happy and thanked the turtle.",
]


def english_rows(n: int) -> list[dict]:
    """n distinct English stories (row i rotates the sentences and names a number)."""
    return [
        {
            "id": f"en-{i}",
            "text": " ".join(SENTENCES[i % 8 :] + SENTENCES[: i % 8]) + f" It was day {i + 1}.",
            "source": "hand-made",
        }
        for i in range(n)
    ]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def translate_args(server, data: Path, *more: str) -> list[str]:
    return [
        *("generate", "--lang", "hindi", "--from-dataset", str(data)),
        *("--template", "translate/hindi.j2", "--column-map", "story=text"),
        *("--base-url", server.base_url, "--api-key", TEST_KEY, "--min-words", "20"),
        *("--name", "tr", *more),
    ]


def test_a_translation_run_killed_and_resumed_asks_nothing_twice(llm_server, tmp_path):
    data = write_jsonl(tmp_path / "stories.jsonl", english_rows(200))
    llm_server.config.latency = 0.05
    args = [str(BIN / "factory"), *translate_args(llm_server, data, "--max-concurrency", "4")]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = tmp_path / "runs" / "tr"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if len(stored(run)[1]) >= 40:
                break
        except Exception:
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 130
    first = llm_server.stats.completions
    assert 40 <= first < 200

    llm_server.config.latency = 0
    again = run_cli("factory", *translate_args(llm_server, data))
    assert again.returncode == 0, again.stderr
    prompts, answers = stored(run)
    assert len(prompts) == len(answers) == 200
    assert llm_server.stats.completions == 200
    assert set(llm_server.stats.served_prompts.values()) == {1}  # nothing asked twice
    assert "200 done, 0 failed, 0 pending" in again.stdout
    # ids come from the rows' content: the same story always has the same id
    rows = english_rows(200)
    expected = {prompt_id("hindi", "story", "translate/hindi", {"story": r["text"]}) for r in rows}
    assert {p.id for p in prompts} == expected
    assert "Devanagari" in prompts[0].messages[-1]["content"]


def test_reordered_and_converted_files_give_the_same_prompts(llm_server, tmp_path):
    rows = english_rows(12)
    data = write_jsonl(tmp_path / "a.jsonl", rows)
    assert run_cli("factory", *translate_args(llm_server, data)).returncode == 0
    served = llm_server.stats.completions
    ids = {p.id for p in stored(tmp_path / "runs" / "tr")[0]}
    datasets.Dataset.from_list(rows[::-1]).to_parquet(str(tmp_path / "b.parquet"))
    datasets.Dataset.from_list(rows[6:]).save_to_disk(str(tmp_path / "c"))
    with (tmp_path / "d.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "text", "source"])
        writer.writeheader()
        writer.writerows(rows[:5])
    for other in ("b.parquet", "c", "d.csv"):  # the same run, the same rows in other files
        result = run_cli("factory", *translate_args(llm_server, tmp_path / other))
        assert result.returncode == 0, result.stderr
        assert "to send" not in result.stderr
    assert llm_server.stats.completions == served  # the same prompts: nothing asked again
    assert {p.id for p in stored(tmp_path / "runs" / "tr")[0]} == ids
    more = write_jsonl(tmp_path / "e.jsonl", english_rows(14))  # two new rows: two requests
    assert run_cli("factory", *translate_args(llm_server, more)).returncode == 0
    assert llm_server.stats.completions == served + 2


def test_empty_rows_and_rows_that_fail_to_render_are_rejects_not_crashes(llm_server, tmp_path):
    rows = english_rows(6)
    rows[1]["text"] = "   "
    rows[2]["text"] = None
    rows[3]["text"] = "Too short."
    data = write_jsonl(tmp_path / "rows.jsonl", rows)
    template = tmp_path / "third.j2"
    template.write_text(
        "{#---\njson_key: story\n---#}\n"
        "Write in Hindi, in Devanagari script, the third word onward of: "
        '{{ story.split()[2:] | join(" ") }} (it starts with {{ story.split()[2] }}).\n'
        'Answer with {"story": "..."}\n',
        encoding="utf-8",
    )
    result = run_cli(
        "factory",
        *("generate", "--lang", "hindi", "--from-dataset", str(data), "--template", str(template)),
        *("--column-map", "story=text", "--base-url", llm_server.base_url),
        *("--api-key", TEST_KEY, "--min-words", "20", "--name", "bad"),
    )
    assert result.returncode == 0, result.stderr
    assert "invalid  3 rows could not be made into prompts (empty_row 2, render_failed 1)" in (
        result.stdout
    )
    assert llm_server.stats.completions == 3
    stats = run_cli("factory", "stats", "runs/bad").stdout
    assert "prompts   6: 3 kept, 3 rejected" in stats
    assert "empty_row" in stats and "render_failed" in stats
    report = run_cli("factory", "report", "runs/bad")
    assert report.returncode == 0, report.stderr


def test_n_takes_the_first_rows_and_a_dry_run_counts_rows(llm_server, tmp_path):
    data = write_jsonl(tmp_path / "s.jsonl", english_rows(30))
    dry = run_cli("factory", *translate_args(llm_server, data, "--dry-run", "--n", "10"))
    assert dry.returncode == 0, dry.stderr
    assert "requests       10 of 30 rows of s.jsonl" in dry.stdout
    assert "templates/translate/hindi.j2" in dry.stdout
    assert llm_server.stats.completions == 0


@pytest.mark.parametrize("language", ["hindi", "marathi", "bangla"])
def test_the_shipped_translation_templates_ask_for_a_faithful_child_level_translation(
    language, tmp_path
):
    data = write_jsonl(tmp_path / "s.jsonl", english_rows(2))
    result = run_cli(
        "factory",
        *("generate", "--lang", language, "--from-dataset", str(data), "--dry-run"),
        *("--template", f"translate/{language}.j2", "--column-map", "story=text"),
    )
    assert result.returncode == 0, result.stderr


def test_a_template_variable_that_is_not_a_column_is_one_line(tmp_path):
    data = write_jsonl(tmp_path / "s.jsonl", english_rows(3))
    result = run_cli(
        "factory",
        *("generate", "--lang", "hindi", "--from-dataset", str(data), "--dry-run"),
        *("--template", "translate/hindi.j2"),
    )
    assert_one_line_error(
        result,
        "translate/hindi.j2 uses {{ story }}, which is not a column of",
        "columns: id, text, source",
        "--column-map story=COLUMN",
    )
    wrong = run_cli(
        "factory",
        *("generate", "--lang", "hindi", "--from-dataset", str(data), "--dry-run"),
        *("--template", "translate/hindi.j2", "--column-map", "story=body"),
    )
    assert_one_line_error(wrong, "--column-map story=body names no column")
    unknown = run_cli(
        "factory",
        *("generate", "--lang", "hindi", "--from-dataset", str(data), "--dry-run"),
        *("--template", "translate/hindi.j2", "--column-map", "tale=text"),
    )
    assert_one_line_error(unknown, "--column-map tale", "has no variable 'tale'")


def test_a_csv_with_a_broken_row_is_one_line_naming_the_line(tmp_path):
    data = tmp_path / "s.csv"
    data.write_text('id,text\n1,"A fox, a turtle."\n2,A dog,ran,home\n3,A cat.\n', encoding="utf-8")
    result = run_cli(
        "factory",
        *("generate", "--lang", "hindi", "--from-dataset", str(data), "--dry-run"),
        *("--template", "translate/hindi.j2", "--column-map", "story=text"),
    )
    assert_one_line_error(result, "s.csv", "line 3 has 4 fields where the header has 2")


def test_dataset_flags_that_do_not_fit_are_one_line(tmp_path):
    data = write_jsonl(tmp_path / "s.jsonl", english_rows(3))
    no_template = run_cli(
        "factory", "generate", "--lang", "hindi", "--from-dataset", str(data), "--dry-run"
    )
    assert_one_line_error(no_template, "--from-dataset needs --template", "translate/hindi.j2")
    both = run_cli(
        "factory",
        *("generate", "--lang", "hindi", "--from-dataset", str(data), "--dry-run"),
        *("--template", "translate/hindi.j2", "--diversify"),
    )
    assert_one_line_error(both, "--diversify", "does not go with --from-dataset")
    too_many = run_cli(
        "factory",
        *("generate", "--lang", "hindi", "--from-dataset", str(data), "--dry-run"),
        *("--template", "translate/hindi.j2", "--column-map", "story=text", "--n", "5"),
    )
    assert_one_line_error(too_many, "has 3 rows", "the maximum is --n 3")
