"""`judge compare-pairwise` end to end: three tiny Hindi models trained through the trainer's
CLI for 1, 100 and 300 steps, sampled with `judge score` (no judge), then judged pairwise by
the local OpenAI-compatible server over real HTTP, which prefers the text whose adjacent word
pairs occur in real Hindi (the fixture corpus): a model that learned more writes more of
them. The leaderboard opens in Debian's Chromium."""

import json
import os
import shlex
import shutil
import subprocess
from itertools import pairwise
from pathlib import Path

import pytest
from conftest import BIN, TEST_KEY, Page, assert_one_line_error, run_cli
from openai_server import default_responder, vocabulary

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
STEPS = (1, 100, 300)
PROMPTS, SAMPLES = 12, 2
PAYLOAD = "<script>window.pwned=1</script><img src=x onerror=window.pwned=2>"


def corpus_vocabulary() -> frozenset[str]:
    lines = (CORPUS / "hindi.jsonl").read_text(encoding="utf-8").splitlines()
    return vocabulary([json.loads(line)["text"] for line in lines if line])


@pytest.fixture(scope="module")
def evaluations(tmp_path_factory) -> list[Path]:
    """Evaluation folders of the 1-, 100- and 300-step models, made by the real commands."""
    work = tmp_path_factory.mktemp("pairwise")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny models: one thread beats contention
    for program, *args in (
        ["trainer", "tokenizer", str(CORPUS / "hindi.jsonl"), "--vocab", "1500", "--out", "tok"],
        ["trainer", "prepare", str(CORPUS / "hindi.jsonl"), "--tokenizer", "tok", "--out", "data"],
    ):
        done = subprocess.run(
            [str(BIN / program), *args], cwd=work, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    train = "--preset tiny --block-size 64 --batch-size 8 --lr 3e-3"
    chains = []  # each model trained, then sampled; the three side by side
    for steps in STEPS:
        run = f"hi-{steps}steps"
        chain = (
            f"{shlex.quote(str(BIN / 'trainer'))} train --data data {train} --steps {steps} "
            f"--out {run} && {shlex.quote(str(BIN / 'judge'))} score {run} --lang hindi "
            f"--n {PROMPTS} --samples {SAMPLES} --max-tokens 40 --out eval-{steps}"
        )
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "text": True}
        chains.append(subprocess.Popen(chain, shell=True, cwd=work, env=env, **quiet))
    for chain in chains:
        _, stderr = chain.communicate(timeout=600)
        assert chain.returncode == 0, stderr
    return [work / f"eval-{steps}" for steps in STEPS]


def compare_pairwise(server, evaluations, out: str, *extra: str) -> subprocess.CompletedProcess:
    return run_cli(
        "judge", "compare-pairwise", *map(str, evaluations),
        "--judge", "openai:gpt-4o", "--judge-base-url", server.base_url,
        "--judge-api-key", TEST_KEY, "--out", out, *extra,
    )  # fmt: skip


def with_payload_in_reasons(body: dict) -> str:
    """The stand-in's verdict, its reason carrying a script-injection payload."""
    answer = json.loads(default_responder(body, "asked", "known_bigrams", corpus_vocabulary()))
    return json.dumps(answer | {"reason": f"{answer.get('reason')} {PAYLOAD}"})


def test_three_trained_models_rank_in_training_order_with_separate_intervals(
    llm_server, evaluations, tmp_path, browser, artifacts
):
    llm_server.config.responder = with_payload_in_reasons
    result = compare_pairwise(llm_server, evaluations, "pw", "--controls", "3")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "pw" / "pairwise.json").read_text())
    ratings = summary["ratings"]
    assert [r["system"] for r in ratings] == ["hi-300steps", "hi-100steps", "hi-1steps"]
    for better, worse in pairwise(ratings):
        assert better["low"] > worse["high"], ratings
    pairs = 3 * PROMPTS * SAMPLES
    assert summary["pairs"] == pairs and summary["parse_failure_rate"] == 0.0
    assert summary["position_consistency"] == {
        "pairs": pairs, "inconsistent": 0, "rate": 0.0, "missing": 0
    }  # fmt: skip
    best_over_worst = summary["win_rates"]["hi-300steps"]["hi-1steps"]["rate"]
    assert best_over_worst["low"] > 0.5
    assert "1. hi-300steps" in result.stdout and "wrote    pw/pairwise.json" in result.stdout
    served = llm_server.stats.chat_requests
    controls = sum(c["pairs"] + c["missing"] for c in summary["controls"].values())
    assert served == 2 * (pairs + controls)  # every pair in both orders, once

    again = compare_pairwise(llm_server, evaluations, "pw", "--controls", "3")
    assert again.returncode == 0, again.stderr
    assert llm_server.stats.chat_requests == served  # a second identical run sends nothing
    assert json.loads((tmp_path / "pw" / "pairwise.json").read_text()) == summary

    html = (tmp_path / "pw" / "leaderboard.html").read_text(encoding="utf-8")
    assert '<html lang="hi">' in html and TEST_KEY not in html
    page = Page(browser, tmp_path / "pw" / "leaderboard.html")
    p = page.page
    assert p.locator("table.ratings tbody tr").all_inner_texts()[0].startswith("1\thi-300steps")
    assert p.locator("table.matrix tbody tr").count() == 3
    assert p.locator("table.lengths tbody tr").count() == 3
    assert p.locator("p.warn").count() == 0  # no parse failures to warn about
    rows = page.rows()
    assert len(rows) == min(200, pairs + controls)
    p.select_option("select.filter-select", label="hi-1steps vs hi-300steps")
    assert len(page.rows()) == PROMPTS * SAMPLES
    p.locator("table.rows tbody tr").first.click()
    dialog = p.locator("dialog.detail[open]")
    assert dialog.locator(".cols > div").count() == 4  # two texts, two verdicts
    assert "swapped order" in dialog.inner_text() and PAYLOAD in dialog.inner_text()
    p.locator("dialog.detail[open] button.close").click()
    p.locator("details.missed summary").first.click()  # what the judge missed, as text
    assert p.locator("details.missed[open] .cols pre").count() >= 2
    page.check_common(artifacts / "leaderboard.png")

    rerendered = run_cli("judge", "report", "pw", "--out", "again.html")
    assert rerendered.returncode == 0, rerendered.stderr
    assert (tmp_path / "again.html").read_text(encoding="utf-8") == html


def test_a_judge_that_always_prefers_position_a_makes_every_pair_a_tie(
    llm_server, evaluations, tmp_path
):
    llm_server.config.pairwise_preference = "first"
    result = compare_pairwise(llm_server, evaluations, "biased", "--controls", "0")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "biased" / "pairwise.json").read_text())
    consistency = summary["position_consistency"]
    assert consistency["rate"] == 1.0 and consistency["inconsistent"] == summary["pairs"]
    for row in summary["win_rates"].values():
        for w in row.values():
            assert w["wins"] == w["losses"] == 0 and w["rate"]["mean"] == 0.5
    assert all(r["rating"] == pytest.approx(1000.0) for r in summary["ratings"])
    assert "(100.0%: counted as ties)" in result.stdout


def test_a_judge_answering_garbage_gives_a_report_that_says_so(llm_server, evaluations, tmp_path):
    llm_server.config.judge_format = "garbage"
    result = compare_pairwise(llm_server, evaluations[:2], "garbage", "--controls", "0")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "ratings  none" in result.stdout and "failures 100.0%" in result.stdout
    html = (tmp_path / "garbage" / "leaderboard.html").read_text(encoding="utf-8")
    assert "named no winner" in html and "No ratings" in html


def test_a_panel_judges_pairs_too(llm_server, evaluations, tmp_path):
    llm_server.config.pairwise_preference = "known_bigrams"
    llm_server.config.known_words = corpus_vocabulary()
    result = run_cli(
        "judge", "compare-pairwise", *map(str, evaluations[1:]),
        "--judge", "openai:gpt-4o", "--judge", "openai:gpt-4o-mini",
        "--judge-base-url", llm_server.base_url, "--judge-api-key", TEST_KEY,
        "--controls", "0", "--out", "panel",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "panel" / "pairwise.json").read_text())
    assert summary["judges"] == ["openai:gpt-4o", "openai:gpt-4o-mini"]
    assert summary["pairs"] == 2 * PROMPTS * SAMPLES  # each judge's verdicts count
    assert set(summary["by_judge"]) == set(summary["judges"])
    # the stand-in gives both judges the same verdicts: they agree completely
    assert summary["agreement"]["krippendorff_alpha"]["value"] == pytest.approx(1.0)
    assert llm_server.stats.chat_requests == 2 * 2 * PROMPTS * SAMPLES  # no shared answers


def test_bad_pairwise_input_is_a_one_line_error(evaluations, tmp_path):
    judge = ["--judge", "openai:gpt-4o", "--judge-base-url", "http://127.0.0.1:9/v1"]
    one = run_cli("judge", "compare-pairwise", str(evaluations[0]), *judge)
    assert_one_line_error(one, "at least two evaluation folders")
    fewer = tmp_path / "fewer"  # the same model evaluated on half the prompts
    shutil.copytree(evaluations[0], fewer)
    rows = (fewer / "completions.jsonl").read_text(encoding="utf-8").splitlines()
    kept = {json.loads(r)["prompt_id"] for r in rows[: len(rows) // 2]}
    (fewer / "completions.jsonl").write_text(
        "".join(r + "\n" for r in rows if json.loads(r)["prompt_id"] in kept), encoding="utf-8"
    )
    different = run_cli("judge", "compare-pairwise", str(evaluations[1]), str(fewer), *judge)
    assert_one_line_error(different, "different prompts", "--prompts")
    nowhere = run_cli("judge", "compare-pairwise", str(evaluations[1]), "nowhere", *judge)
    assert_one_line_error(nowhere, "nowhere has no completions.jsonl", "judge score")
    no_judge = run_cli("judge", "compare-pairwise", *map(str, evaluations[:2]))
    assert no_judge.returncode == 2 and "Traceback" not in no_judge.stderr
    assert "--judge" in no_judge.stderr
    folders = list(map(str, evaluations[:2]))
    for args, fragment in [
        (["--judge", "gpt-4o"], "provider:model"),
        (["--judge", "openai:a", "--judge", "openai:a", "--judge-base-url", "http://x/v1"],
         "given twice"),
        (["--judge", "openai:a", "--judge-base-url", "http://x/v1", "--judge-base-url",
          "http://y/v1", "--judge-base-url", "http://z/v1"], "3 times for 1 --judge"),
        (["--judge", "openai:a", "--judge", "openai:b", "--judge-base-url", "http://x/v1",
          "--judge-base-url", "http://y/v1", "--judge-api-key", "k"], "each key goes only"),
        (["--judge", "openai:a", "--judge-base-url", "http://x/v1", "--controls", "-1"],
         "--controls"),
    ]:  # fmt: skip
        assert_one_line_error(run_cli("judge", "compare-pairwise", *folders, *args), fragment)
    not_pairwise = run_cli("judge", "report", str(tmp_path))
    assert_one_line_error(not_pairwise, "no summary.json")
