"""Decontamination (`factory clean --decontaminate`, and by default the shipped evaluation
sets): planted copies of evaluation prompts are caught with the prompt's id, near-misses
shorter than the n-gram are not."""

import json
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_cli

from factory.decontaminate import Decontaminator
from factory.evalsets import EvalPrompt, read_eval_prompts, shipped_dir, shipped_eval_prompts
from factory.store import RunStore

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
STORIES = [json.loads(line) for line in (CORPUS / "hindi.jsonl").read_text().splitlines()]


def prompt(text: str, pid: str = "p1") -> EvalPrompt:
    return EvalPrompt(pid, text, None, "test:1")


LONG = "the little red fox jumped over the sleepy brown dog and ran into the deep green wood"
SHORT = "a tiny bird sang a song for the moon"  # 9 words: below 13, above the 8-word floor


def test_a_shared_ngram_of_the_set_length_is_caught_and_one_word_less_is_not():
    index = Decontaminator([prompt(LONG)], n=13)
    words = LONG.split()
    assert index.check(f"Once upon a time {' '.join(words[2:15])} and then home.").prompt.id == "p1"
    assert index.check(f"Once upon a time {' '.join(words[2:14])} and then home.") is None
    assert index.check(LONG.upper().replace(" ", ",  ")) is not None  # case and punctuation


def test_a_prompt_shorter_than_the_ngram_must_appear_whole():
    index = Decontaminator([prompt(SHORT, "short")], n=13)
    assert index.check(f"Then {SHORT}, and slept.").prompt.id == "short"
    assert index.check(f"Then {' '.join(SHORT.split()[:-1])} and slept.") is None
    generic = Decontaminator([prompt("once upon a time")], n=13)
    assert generic.too_short == 1 and generic.check("once upon a time there was") is None


def test_references_count_and_the_ngram_is_configurable():
    with_reference = EvalPrompt("p2", "Begin here.", LONG, "x")
    assert Decontaminator([with_reference], n=13).check(LONG).prompt.id == "p2"
    # 17 words with n=20: the prompt must appear whole, so 16 of its words are not enough
    assert Decontaminator([prompt(LONG)], n=20).check(" ".join(LONG.split()[:16])) is None
    assert Decontaminator([prompt(LONG)], n=20).check(LONG) is not None


def test_indic_prompts_match_whole_words_with_their_marks():
    text = STORIES[0]["text"]
    words = text.split()
    index = Decontaminator([prompt(" ".join(words[5:25]), "hi")], n=13)
    assert index.check("शुरुआत। " + " ".join(words[5:18]) + " अंत।").prompt.id == "hi"
    # the same letters without their vowel signs are other words
    stripped = "".join(ch for ch in " ".join(words[5:18]) if not 0x093E <= ord(ch) <= 0x094D)
    assert index.check(stripped) is None


def test_shipped_sets_are_read_with_the_judges_ids():
    from judge.prompts_io import load_prompts

    shipped = {p.id: p.text for p in shipped_eval_prompts()}
    for language in ("hindi", "bangla", "hinglish"):
        for item in load_prompts(language, None, None):
            assert shipped[item["id"]] == item["prompt"]
    assert shipped_dir() is not None


def planted(tmp_path: Path) -> tuple[Path, dict[str, str], str]:
    """The Hindi fixture stories with a shipped evaluation prompt planted in two of them, and a
    12-word piece of a long one (a near-miss) in a third."""
    evals = read_eval_prompts(shipped_dir() / "hindi.txt", "hindi")
    long_prompt = next(p for p in evals if len(p.text.split()) >= 16)
    rows = [dict(r) for r in STORIES]
    rows[0]["text"] += " " + evals[0].text
    rows[1]["text"] = evals[3].text + " " + rows[1]["text"]
    rows[2]["text"] += " " + " ".join(long_prompt.text.split()[:12])
    path = tmp_path / "planted.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    expected = {rows[0]["id"]: evals[0].id, rows[1]["id"]: evals[3].id}
    return path, expected, rows[2]["id"]


def verdicts(run_dir: Path) -> dict[str, tuple[str | None, str]]:
    store = RunStore.open(run_dir / "store.sqlite")
    try:
        found = store.verdicts()
        details = {pid: d for pid, d, _ in store.reject_examples("contaminated", 100)}
    finally:
        store.close()
    return {pid: (reason, details.get(pid, "")) for pid, reason in found.items()}


def test_clean_rejects_planted_evaluation_prompts_by_default_naming_them(tmp_path):
    path, expected, near_miss = planted(tmp_path)
    result = run_cli("factory", "clean", str(path), "--lang", "hindi", "--out", "c")
    assert result.returncode == 0, result.stderr
    found = verdicts(tmp_path / "c")
    contaminated = {pid for pid, (reason, _) in found.items() if reason == "contaminated"}
    assert contaminated == set(expected)
    for pid, eval_id in expected.items():
        assert eval_id in found[pid][1] and "hindi.txt:" in found[pid][1]
    assert found[near_miss][0] is None
    assert "rejected        2  contaminated" in result.stdout


def test_the_shipped_sets_can_be_left_out_and_own_files_given(tmp_path):
    path, _, near_miss = planted(tmp_path)
    off = run_cli(
        *("factory", "clean", str(path), "--lang", "hindi", "--out", "off"),
        "--no-decontaminate-shipped",
    )
    assert off.returncode == 0 and "contaminated" not in off.stdout
    own = tmp_path / "mine.jsonl"
    piece = " ".join(STORIES[2]["text"].split()[:12])
    own.write_text(json.dumps({"id": "mine-1", "prompt": piece}, ensure_ascii=False) + "\n")
    result = run_cli(
        *("factory", "clean", "off", "--no-decontaminate-shipped"),
        *("--decontaminate", str(own), "--contamination-ngram", "10"),
    )
    assert result.returncode == 0, result.stderr
    reason, detail = verdicts(tmp_path / "off")[near_miss]
    assert reason == "contaminated"
    assert detail.startswith("evaluation prompt mine-1 (mine.jsonl:1): 10 words in common")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--contamination-ngram", "2"], ["--contamination-ngram", "greater than or equal to 4"]),
        (["--decontaminate", "missing.txt"], ["--decontaminate missing.txt", "no such file"]),
    ],
)
def test_bad_decontamination_flags_are_one_line_and_nothing_is_imported(args, fragments, tmp_path):
    result = run_cli("factory", "clean", str(CORPUS / "hindi.jsonl"), "--lang", "hindi",
                     "--out", "x", *args)  # fmt: skip
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "x").exists()


def test_a_malformed_prompts_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "fine"}\nnot json\n', encoding="utf-8")
    result = run_cli("factory", "clean", str(CORPUS / "hindi.jsonl"), "--lang", "hindi",
                     "--out", "y", "--decontaminate", str(bad))  # fmt: skip
    assert_one_line_error(result, "bad.jsonl:2", "not a JSON object")
    assert not (tmp_path / "y").exists()
