"""A panel of judges in `judge score`: two stand-in judges on two local OpenAI-compatible
servers, each with its own key, every completion judged twice by each (`--repeat 2`); the
panel mean, each judge's scores, the judges' agreement and each judge's self-consistency;
what a second run costs; the report in Debian's Chromium."""

import json
from statistics import fmean

import pytest
from conftest import TEST_KEY, Page, assert_one_line_error, run_cli
from openai_server import FakeOpenAI, ServerConfig

from judge.agreement import krippendorff_alpha

SECOND_KEY = "sk-kahani-test-second-judge-KEY"
DIMENSIONS = ["context_awareness", "completeness", "grammar", "fluency", "creativity", "overall"]


@pytest.fixture
def servers():
    first = FakeOpenAI(ServerConfig(api_key=TEST_KEY)).start()
    second = FakeOpenAI(ServerConfig(api_key=SECOND_KEY)).start()
    yield first, second
    first.stop()
    second.stop()


def score(first, *judging: str):
    """`judge score` of an API model served by the first server (it echoes the openings)."""
    return run_cli(
        "judge", "score", "openai:gpt-4o-mini", "--base-url", first.base_url,
        "--api-key", TEST_KEY, "--lang", "hindi", "--n", "6", "--samples", "2",
        "--controls", "2", "--out", "eval", *judging,
    )  # fmt: skip


def rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_panel_reports_each_judge_agreement_and_self_consistency(
    servers, tmp_path, browser, artifacts
):
    first, second = servers
    one = ["--judge", "openai:gpt-4o", "--judge-base-url", first.base_url]
    alone = score(first, *one, "--judge-api-key", TEST_KEY)
    assert alone.returncode == 0, alone.stderr
    items = len(rows(tmp_path / "eval" / "scores.jsonl")) + len(
        rows(tmp_path / "eval" / "controls.jsonl")
    )
    before = first.stats.chat_requests

    panel = [
        *("--judge", "openai:gpt-4o", "--judge", "openai:judge-b"),
        *("--judge-base-url", first.base_url, "--judge-base-url", second.base_url),
        *("--judge-api-key", TEST_KEY, "--judge-api-key", SECOND_KEY, "--repeat", "2"),
    ]
    result = score(first, *panel)
    assert result.returncode == 0, result.stderr
    # the first judge's first judgements were paid for alone: only its repeat is new
    assert first.stats.chat_requests - before == items
    assert second.stats.chat_requests == 2 * items
    # each key went only to the server it was given for
    assert set(first.stats.authorizations) == {f"Bearer {TEST_KEY}"}
    assert set(second.stats.authorizations) == {f"Bearer {SECOND_KEY}"}
    assert "panel    2 judge(s), 2 judgement(s) of each item" in result.stdout
    assert "agreement on overall" in result.stdout

    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    judge, section = summary["judge"], summary["panel"]
    assert judge["judges"] == ["openai:gpt-4o", "openai:judge-b"] and judge["provider"] == "panel"
    assert section["repeats"] == 2 and [j["model"] for j in section["judges"]] == [
        "gpt-4o",
        "judge-b",
    ]
    scores = rows(tmp_path / "eval" / "scores.jsonl")
    for row in scores:  # the panel mean: each judge's mean over its repeats, then their mean
        by_judge: dict[str, list[int]] = {}
        for j in row["judgements"]:
            by_judge.setdefault(j["judge"], []).append(j["scores"]["overall"])
        assert len(row["judgements"]) == 4
        expected = fmean(fmean(v) for v in by_judge.values())
        assert row["judge"]["scores"]["overall"] == pytest.approx(expected)
    overall = judge["dimensions"]["overall"]
    assert overall["mean"] == pytest.approx(fmean(r["judge"]["scores"]["overall"] for r in scores))

    agreement = section["agreement"]
    assert list(agreement) == DIMENSIONS
    first_judgements = [
        [next(j for j in r["judgements"] if j["judge"] == name and j["repeat"] == 0)
         ["scores"]["overall"] for r in scores]
        for name in judge["judges"]
    ]  # fmt: skip
    alpha = agreement["overall"]["krippendorff_alpha"]
    assert alpha["value"] == pytest.approx(krippendorff_alpha(first_judgements).value)
    assert alpha["low"] <= alpha["value"] <= alpha["high"] and alpha["n"] == len(scores)
    pair = agreement["overall"]["pairs"][0]
    assert (pair["a"], pair["b"]) == ("openai:gpt-4o", "openai:judge-b")
    assert pair["spearman"]["value"] is not None and pair["quadratic_kappa"]["value"] is not None
    for j in section["judges"]:
        consistency = j["self_consistency"]
        assert list(consistency) == DIMENSIONS
        # the stand-in's grades change with the seed: a judge is not perfectly consistent
        assert any(c["value"] is not None and c["value"] < 1 for c in consistency.values())
        assert j["parse_failure_rate"] == 0.0

    served = (first.stats.chat_requests, second.stats.chat_requests)
    again = score(first, *panel)
    assert again.returncode == 0, again.stderr
    assert (first.stats.chat_requests, second.stats.chat_requests) == served  # free
    assert json.loads((tmp_path / "eval" / "summary.json").read_text()) == summary

    html = (tmp_path / "eval" / "report.html").read_text(encoding="utf-8")
    assert TEST_KEY not in html and SECOND_KEY not in html
    page = Page(browser, tmp_path / "eval" / "report.html")
    p = page.page
    assert p.locator("table.panel tbody tr").count() == 2
    assert p.locator("table.agreement tbody tr").count() == len(DIMENSIONS)
    assert p.locator("table.consistency tbody tr").count() == 2
    examples = p.locator("details.control-examples")
    assert examples.count() >= 1
    examples.first.locator("summary").click()
    originals = examples.first.locator(".cols > div")
    assert originals.count() >= 2 and "original" in originals.first.inner_text()
    p.locator("table.rows tbody tr").first.click()
    detail = p.locator("dialog.detail[open]")
    assert "openai:judge-b #2" in detail.inner_text()
    page.check_common(artifacts / "panel.png")


def test_panel_flags_that_do_not_add_up_are_one_line_errors(tmp_path):
    model = ["judge", "score", "openai:m", "--base-url", "http://127.0.0.1:9/v1", "--lang", "hindi"]
    for args, fragment in [
        (["--repeat", "2"], "--repeat needs --judge"),
        (["--judge-api-key", "k"], "--judge-api-key was given without --judge"),
        (["--judge", "openai:a", "--judge-api-key", "k", "--judge-api-key", "l"],
         "2 times for 1 --judge"),
        (["--judge", "openai:a", "--judge", "local:b", "--judge-base-url", "http://x/v1",
          "--judge-base-url", "http://y/v1", "--judge-api-key", "k"], "each key goes only"),
        (["--judge", "openai:a", "--judge-base-url", "http://x/v1", "--repeat", "0"],
         "--repeat"),
    ]:  # fmt: skip
        assert_one_line_error(run_cli(*model, *args), fragment)
    assert not (tmp_path / "runs").exists()  # nothing was written


def test_a_judge_answering_garbage_is_reported_and_agreement_undefined(servers, tmp_path):
    first, second = servers
    second.config.judge_format = "garbage"
    result = score(
        first,
        *("--judge", "openai:gpt-4o", "--judge", "openai:judge-b"),
        *("--judge-base-url", first.base_url, "--judge-base-url", second.base_url),
        *("--judge-api-key", TEST_KEY, "--judge-api-key", SECOND_KEY),
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    good, bad = summary["panel"]["judges"]
    assert good["parse_failure_rate"] == 0.0 and bad["parse_failure_rate"] == 1.0
    assert bad["dimensions"]["overall"]["mean"] is None
    # the mean is the judge that answered; agreement with a judge that gave nothing is undefined
    assert summary["judge"]["parse_failure_rate"] == 0.0
    assert summary["judge"]["dimensions"]["overall"] == good["dimensions"]["overall"]
    assert summary["panel"]["agreement"]["overall"]["krippendorff_alpha"]["value"] is None
    assert "alpha - (undefined" in result.stdout
    html = (tmp_path / "eval" / "report.html").read_text(encoding="utf-8")
    assert "undefined" in html
