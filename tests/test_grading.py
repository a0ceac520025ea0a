"""A judge as a filter (`factory clean --judge provider:model --min-score S`): with the stand-in
judge (it scores longer texts higher), texts below S are rejected with their score, grades are
kept, a second run sends nothing, and bad flags are one line before anything is written."""

import json
import random
from pathlib import Path

import pytest
from conftest import TEST_KEY, Page, assert_one_line_error, run_cli
from openai_server import JUDGE_FORMATS, _grade

from factory.grading import Rubric
from factory.paths import TEMPLATES_DIR
from factory.store import RunStore

CORPUS = Path(__file__).parent / "fixtures" / "corpus"


def imported(tmp_path: Path, name: str = "c") -> Path:
    """English fixture stories cut to 15, 20, ... words, cleaned into a run folder: the
    stand-in judge grades them from about 3 to 10."""
    rows = [json.loads(line) for line in (CORPUS / "english.jsonl").read_text().splitlines()]
    cut = [
        {"id": r["id"], "text": " ".join(r["text"].split()[: 15 + 5 * i]) + "."}
        for i, r in enumerate(rows[:24])
    ]
    data = tmp_path / "cut.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in cut), encoding="utf-8")
    done = run_cli("factory", "clean", str(data), "--lang", "english", "--out", name,
                   "--min-words", "10")  # fmt: skip
    assert done.returncode == 0, done.stderr
    return tmp_path / name


def judged(server, run: Path, *args: str):
    return run_cli(
        *("factory", "clean", str(run), "--min-words", "10"),
        *("--judge", "openai:judge-model", "--judge-base-url", server.base_url),
        *("--judge-api-key", TEST_KEY, *args),
    )


def grades(run: Path):
    store = RunStore.open(run / "store.sqlite")
    try:
        details = {}
        for reason in ("low_score", "unscored"):
            details.update({pid: d for pid, d, _ in store.reject_examples(reason, 100)})
        return store.grades(), details, store.grading()
    finally:
        store.close()


def test_low_scores_are_rejected_with_their_score_and_a_second_run_sends_nothing(
    llm_server, tmp_path
):
    run = imported(tmp_path)
    result = judged(llm_server, run, "--min-score", "6")
    assert result.returncode == 0, result.stderr
    rows, details, grading = grades(run)
    assert len(rows) == 24 and grading["judge"] == "openai:judge-model"
    assert grading["min_score"] == 6 and grading["rubric"] == "rubric/story"
    low = [(g, reason) for g, reason, _ in rows if g.score < 6]
    high = [(g, reason) for g, reason, _ in rows if g.score >= 6]
    assert low and high
    assert all(reason == "low_score" for _, reason in low)
    assert all(reason is None for _, reason in high)
    for g, _ in low:
        assert details[g.prompt_id] == f"overall {g.score:g} < --min-score 6 (openai:judge-model)"
        assert set(g.scores) == {"language", "coherence", "simplicity", "prompt_following",
                                 "overall"} and g.reasoning  # fmt: skip
    assert f"rejected  {len(low):>7,}  low_score" in result.stdout
    assert "grades    24 by openai:judge-model" in result.stdout

    served = llm_server.stats.completions
    assert served == 24
    again = judged(llm_server, run, "--min-score", "6")
    assert again.returncode == 0 and llm_server.stats.completions == served
    assert [(g, r) for g, r, _ in grades(run)[0]] == [(g, r) for g, r, _ in rows]

    # A lower threshold re-uses the same grades; without --judge the grades are gone.
    lower = judged(llm_server, run, "--min-score", "3")
    assert lower.returncode == 0 and llm_server.stats.completions == served
    plain = run_cli("factory", "clean", str(run), "--min-words", "10")
    assert "low_score" not in plain.stdout and grades(run)[2] is None


def test_grading_through_the_batch_api(llm_server, tmp_path):
    run = imported(tmp_path)
    result = judged(llm_server, run, "--judge-batch", "--batch-poll-seconds", "0.2")
    assert result.returncode == 0, result.stderr
    rows, _, grading = grades(run)
    assert grading["judge"] == "openai-batch:judge-model" and grading["min_score"] is None
    assert len(rows) == 24 and all(g.score is not None for g, _, _ in rows)
    assert all(reason is None for _, reason, _ in rows)  # no threshold: grades only
    assert llm_server.stats.batches_created >= 1 and llm_server.stats.completions == 0


def test_an_unusable_grade_is_asked_again_then_recorded_as_unscored(llm_server, tmp_path):
    run = imported(tmp_path)
    llm_server.config.judge_format = "garbage"
    result = judged(llm_server, run, "--min-score", "5")
    assert result.returncode == 2 and "all 24 answers were rejected: unscored 24" in result.stderr
    rows, _, _ = grades(run)
    assert all(g.score is None and g.problem == "no JSON object in the answer" for g, _, _ in rows)
    assert llm_server.stats.completions == 48  # each text asked twice, with a nudge


def rubric_prompt() -> str:
    rubric = Rubric(TEMPLATES_DIR / "rubric" / "story.j2")
    return rubric.messages("english", "Write a story.", "A cat sat. " * 20, 1)[-1].content


@pytest.mark.parametrize("judge_format", [f for f in JUDGE_FORMATS if f != "garbage"])
def test_grades_are_read_however_the_judge_writes_them(judge_format):
    rubric = Rubric(TEMPLATES_DIR / "rubric" / "story.j2")
    answer = _grade(rubric_prompt(), random.Random(0), judge_format)
    scores, reasoning, problem = rubric.parse(answer)
    assert problem == "" and set(scores) == set(rubric.dimensions), answer
    assert all(1 <= s <= 10 for s in scores.values()) and reasoning


def test_a_grade_off_the_scale_or_missing_is_a_problem_not_a_number():
    rubric = Rubric(TEMPLATES_DIR / "rubric" / "story.j2")
    full = {d: 7 for d in rubric.dimensions}
    assert rubric.parse(json.dumps(full))[0]["overall"] == 7
    assert "not a score from 1 to 10" in rubric.parse(json.dumps(full | {"overall": 11}))[2]
    assert "not on a 1-10 scale" in rubric.parse(json.dumps(full | {"overall": "4/5"}))[2]
    assert rubric.parse(json.dumps({"overall": 7}))[2].startswith("no score for language")
    assert rubric.parse("I cannot grade this.")[0] is None


def test_an_own_rubric_with_its_own_dimension(llm_server, tmp_path):
    rubric = tmp_path / "mine.j2"
    rubric.write_text(
        "{#---\njson_key: quality\ndimensions: [quality]\nscale: [1, 10]\n---#}\n"
        'Grade this {{ language }} text.\n"""\n{{ prompt }}\n"""\n"""\n{{ text }}\n"""\n'
        "Give an integer score from 1 to 10:\n- quality: is it good data?\n",
        encoding="utf-8",
    )
    run = imported(tmp_path)
    result = judged(llm_server, run, "--rubric", str(rubric), "--min-score", "7")
    assert result.returncode == 0, result.stderr
    rows, _, grading = grades(run)
    assert grading["score_key"] == "quality" and all(
        set(g.scores) == {"quality"} for g, _, _ in rows
    )


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--judge", "openai:m", "--judge-base-url", "http://127.0.0.1:9/v1", "--min-score", "11"],
         ["--min-score 11 is outside the rubric's scale 1-10"]),
        (["--judge", "openai:m", "--judge-base-url", "http://127.0.0.1:9/v1", "--min-score", "0"],
         ["--min-score 0 is outside"]),
        (["--min-score", "5"], ["need --judge provider:model"]),
        (["--judge", "gpt-4o"], ["--judge expects provider:model"]),
        (["--judge", "openai:m"], ["needs --judge-api-key", "--judge-base-url"]),
        (["--judge", "g4f:m", "--judge-batch"], ["--judge-batch needs an openai"]),
        (["--judge", "openai:m", "--judge-base-url", "http://127.0.0.1:9/v1", "--rubric",
          "nope.j2"], ["template nope.j2 does not exist"]),
    ],
)  # fmt: skip
def test_bad_judge_flags_are_one_line_before_anything_is_written(args, fragments, tmp_path):
    result = run_cli("factory", "clean", str(CORPUS / "english.jsonl"), "--lang", "english",
                     "--out", "x", *args)  # fmt: skip
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "x").exists()


def test_a_rubric_without_its_scores_declared_is_one_line(tmp_path):
    rubric = tmp_path / "plain.j2"
    rubric.write_text("Grade {{ text }}.\n", encoding="utf-8")
    result = run_cli("factory", "clean", str(CORPUS / "english.jsonl"), "--lang", "english",
                     "--judge", "openai:m", "--judge-base-url", "http://127.0.0.1:9/v1",
                     "--rubric", str(rubric))  # fmt: skip
    assert_one_line_error(result, "plain.j2", "needs `dimensions`")


def test_the_report_shows_diversity_and_grades_near_the_threshold(
    browser, llm_server, tmp_path, artifacts
):
    made = run_cli(
        *("factory", "generate", "--lang", "english", "--n", "30", "--min-words", "20"),
        *("--base-url", llm_server.base_url, "--api-key", TEST_KEY, "--diversify"),
    )
    assert made.returncode == 0, made.stderr
    run = next((tmp_path / "runs").iterdir())
    result = judged(llm_server, run, "--min-score", "6", "--min-words", "20")
    assert result.returncode == 0, result.stderr
    assert run_cli("factory", "report", str(run)).returncode == 0
    page = Page(browser, run / "report.html")
    p = page.page
    assert p.locator("table.diversity tbody tr").count() == 6
    assert p.locator("table.openings tbody tr").count() >= 5
    assert p.locator("table.names tbody tr").count() >= 3
    assert p.locator("table.lengths").count() == 3  # feature, style, device
    assert p.get_by_role("heading", name="Judge grades").is_visible()
    assert p.locator("svg.chart[aria-label^='overall score'] rect").count() > 0
    near = p.locator("details.graded summary").all_inner_texts()
    assert any("low_score" in s for s in near) and any("kept" in s for s in near)
    assert p.locator("table.rows th", has_text="score").count() == 1
    page.check_common(artifacts / "dataset-diversity.png")
