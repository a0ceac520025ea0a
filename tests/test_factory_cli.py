"""`factory prompts` and `factory generate --dry-run`, and their one-line errors."""

import json
import re

import regex

from tests.conftest import assert_one_line_error, run_cli


def test_prompts_for_bangla_are_bengali_script_and_distinct():
    result = run_cli("factory", "prompts", "--lang", "bangla", "--n", "5")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 5
    combos = {
        (r["variables"]["noun"], r["variables"]["verb"], r["variables"]["adjective"])
        for r in records
    }
    assert len(combos) == 5 and len({r["id"] for r in records}) == 5
    for record in records:
        assert re.fullmatch(r"bangla-story-[0-9a-f]{16}", record["id"])
        assert regex.search(r"\p{Script=Bengali}", record["messages"][-1]["content"])
        assert not regex.search(r"\p{Script=Devanagari}", record["messages"][-1]["content"])
        assert [m["role"] for m in record["messages"]] == ["system", "user"]


def test_prompts_written_to_a_file_resume_where_a_first_batch_stopped(tmp_path):
    first = tmp_path / "first.jsonl"
    assert (
        run_cli("factory", "prompts", "--lang", "hindi", "--n", "7", "--out", str(first)).returncode
        == 0
    )
    rest = run_cli("factory", "prompts", "--lang", "hindi", "--n", "3", "--start", "4")
    whole = first.read_text(encoding="utf-8").splitlines()
    assert rest.stdout.splitlines() == whole[4:7]


def test_dry_run_prints_requests_tokens_and_both_prices():
    result = run_cli("factory", "generate", "--lang", "hindi", "--n", "1000", "--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "nothing was sent" in out
    assert re.search(
        r"requests\s+1,000 of [\d,]+ unique \(noun, verb, adjective\) combinations", out
    )
    input_tokens = int(re.search(r"input tokens\s+([\d,]+)", out)[1].replace(",", ""))
    assert 50_000 < input_tokens < 1_000_000  # ~100-1000 tokens per Hindi story prompt
    standard, batch = (
        float(x) for x in re.search(r"\$([\d.]+) standard, \$([\d.]+) with the Batch", out).groups()
    )
    assert 0 < batch < standard


def test_dry_run_for_a_model_without_a_price_says_so():
    result = run_cli(
        "factory",
        "generate",
        "--lang",
        "english",
        "--n",
        "10",
        "--model",
        "llama-3-8b",
        "--dry-run",
    )
    assert result.returncode == 0
    assert "llama-3-8b is not in the price table" in result.stdout


def test_unknown_language_lists_the_available_ones():
    assert_one_line_error(
        run_cli("factory", "prompts", "--lang", "klingon"),
        "klingon",
        "bangla, english, hindi, hinglish, marathi",
    )


def test_asking_for_more_prompts_than_exist_names_the_maximum(tmp_path):
    vocab = tmp_path / "vocab"
    vocab.mkdir()
    for name, words in {
        "nouns": "a\nb\nc",
        "verbs": "x\ny",
        "adjectives": "p",
        "features": "f",
    }.items():
        (vocab / f"{name}.txt").write_text(words, encoding="utf-8")
    result = run_cli(
        "factory", "prompts", "--lang", "english", "--n", "7", "--vocab-dir", str(vocab)
    )
    assert_one_line_error(result, "only 6 unique", "the maximum is --n 6")


def test_missing_word_list_names_the_file(tmp_path):
    result = run_cli("factory", "prompts", "--lang", "english", "--vocab-dir", str(tmp_path))
    assert_one_line_error(result, str(tmp_path / "adjectives.txt"), "does not exist")


def test_empty_word_list_names_the_file(tmp_path):
    for name in ("nouns", "verbs", "adjectives"):
        (tmp_path / f"{name}.txt").write_text("word\n", encoding="utf-8")
    (tmp_path / "features.txt").write_text("# only a comment\n\n", encoding="utf-8")
    result = run_cli("factory", "prompts", "--lang", "english", "--vocab-dir", str(tmp_path))
    assert_one_line_error(result, str(tmp_path / "features.txt"), "is empty")


def test_template_syntax_error_gives_file_and_line(tmp_path):
    bad = tmp_path / "bad.j2"
    bad.write_text("Tell a story\nabout {% if noun %}a {{ noun }}\n", encoding="utf-8")
    result = run_cli("factory", "prompts", "--lang", "hindi", "--template", str(bad))
    assert_one_line_error(result, f"{bad}:", "template syntax error")


def test_template_variable_that_no_list_gives(tmp_path):
    own = tmp_path / "own.j2"
    own.write_text("A story about {{ noun }} on {{ planet }}.", encoding="utf-8")
    result = run_cli("factory", "prompts", "--lang", "hindi", "--template", str(own))
    assert_one_line_error(result, "needs planet", "--var")
    fixed = run_cli(
        "factory",
        "prompts",
        "--lang",
        "hindi",
        "--n",
        "1",
        "--template",
        str(own),
        "--var",
        "planet=Mars",
    )
    assert "on Mars." in fixed.stdout


def test_unwritable_output_path(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    result = run_cli(
        "factory", "prompts", "--lang", "hindi", "--out", str(blocker / "prompts.jsonl")
    )
    assert_one_line_error(result, "cannot write", "prompts.jsonl")


def test_every_cli_has_help():
    for program in ("factory", "judge", "trainer"):
        result = run_cli(program, "--help")
        assert result.returncode == 0 and "Usage" in result.stdout
