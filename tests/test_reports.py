"""HTML reports in a real browser: Debian's Chromium, headless, driven by Playwright, opening
each report from file:// as a user would. The inputs come from the real commands (`judge
score` on a tiny trained model and on an API model served locally, `factory generate`), and
the served texts carry script-injection payloads that must show as text and run nothing."""

import json

from conftest import TEST_KEY, Page, run_cli
from test_judge import tiny_run  # noqa: F401 (a fixture: the tiny Hindi model)

from judge.rubric import DIMENSIONS

PAYLOAD = "<script>window.pwned=1</script><img src=x onerror=window.pwned=2></textarea>"
HINGLISH = [
    "Haan yaar, mujhe nahi pata, office mein meeting pe meeting thi.",
    "Arre nahin yaar, weekend pe movie dekhne chalein? Accha rahega, acha plan hai.",
]
JUDGE_ASK = "Give each of these an integer score"


def served(body: dict) -> str:
    """The local server as judge (scores from the text's length, reasoning with a payload) and
    as the model or data generator (Hinglish replies and stories, some carrying payloads)."""
    user = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    if JUDGE_ASK in user:
        score = 1 + len(user) % 10
        dims = {d: score for kind in DIMENSIONS.values() for d in kind}
        return json.dumps(dims | {"reasoning": f"judge says {PAYLOAD}"})
    if '"story"' in user:  # factory generate
        from openai_server import default_responder

        story = json.loads(default_responder(body))["story"]
        story = f"{PAYLOAD} {story}" if len(user) % 3 == 0 else story
        return json.dumps({"story": story}, ensure_ascii=False)
    return f"{HINGLISH[len(user) % 2]} {PAYLOAD}"


def test_evaluation_report_sorts_filters_opens_and_keeps_payloads_inert(
    browser,
    tiny_run,  # noqa: F811
    llm_server,
    tmp_path,
    artifacts,
):
    llm_server.config.responder = served
    prompts = tmp_path / "prompts.jsonl"
    texts = ["एक दिन राजू बाज़ार गया।", f"मीना ने {PAYLOAD} देखा।", "गाँव में एक बूढ़ा किसान था।"]
    prompts.write_text("".join(json.dumps({"prompt": t}) + "\n" for t in texts))
    judge = ["--judge", "openai:gpt-4o", "--judge-base-url", llm_server.base_url]
    common = ["--lang", "hindi", "--prompts", str(prompts), "--samples", "2", "--controls", "2"]
    key = ["--judge-api-key", TEST_KEY, "--max-tokens", "30"]
    tiny = run_cli("judge", "score", str(tiny_run), *common, *judge, *key, "--out", "a")
    assert tiny.returncode == 0, tiny.stderr
    api = ["openai:gpt-4o-mini", "--base-url", llm_server.base_url, "--api-key", TEST_KEY]
    other = run_cli("judge", "score", *api, *common, *judge, *key, "--out", "b")
    assert other.returncode == 0, other.stderr
    report = tmp_path / "a" / "report.html"
    html = report.read_text(encoding="utf-8")
    assert '<html lang="hi">' in html and "Noto Sans Devanagari" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert TEST_KEY not in html

    page = Page(browser, report)
    p = page.page
    assert p.locator("table.headline tbody tr").count() >= 6
    assert p.locator("table.controls tbody tr").count() == 3
    before = page.rows()
    assert len(before) == 6
    p.locator("table.rows th", has_text="overall").click()
    ascending = page.rows()
    p.locator("table.rows th", has_text="overall").click()
    assert page.rows() != ascending and sorted(before) == sorted(ascending)
    p.fill("input.search", "राजू")
    assert len(page.rows()) == 2
    p.fill("input.search", "")
    p.select_option("select.filter-select", index=2)
    assert len(page.rows()) == 2
    p.select_option("select.filter-select", index=0)
    p.fill("input.range-min", "11")
    assert page.rows() == []
    p.fill("input.range-min", "")
    p.locator("table.rows tbody tr", has_text="pwned").first.click()
    dialog = p.locator("dialog.detail[open]")
    assert dialog.is_visible()
    assert PAYLOAD in dialog.inner_text() and "judge says" in dialog.inner_text()
    page.check_common(artifacts / "evaluation.png")

    compare = run_cli("judge", "compare", "a", "b", "--out", "compare.html", cwd=tmp_path)
    assert compare.returncode == 0, compare.stderr
    page = Page(browser, tmp_path / "compare.html")
    p = page.page
    assert p.locator("table.significance tbody tr").count() > 0
    assert len(page.rows()) == 3
    p.fill("input.search", "राजू")
    assert len(page.rows()) == 1
    page.page.locator("table.rows tbody tr").first.click()
    assert p.locator("dialog.detail[open] .cols > div").count() == 2
    page.check_common(artifacts / "compare.png")


def test_hinglish_report_has_the_code_mixing_panel(browser, llm_server, tmp_path, artifacts):
    llm_server.config.responder = served
    result = run_cli(
        *("judge", "score", "openai:gpt-4o-mini", "--base-url", llm_server.base_url),
        *("--api-key", TEST_KEY),
        *("--lang", "hinglish", "--n", "6", "--samples", "2", "--controls", "2"),
        *("--judge", "openai:gpt-4o", "--judge-base-url", llm_server.base_url),
        *("--judge-api-key", TEST_KEY, "--out", "hinglish"),
    )
    assert result.returncode == 0, result.stderr
    assert run_cli("judge", "report", "hinglish").returncode == 0
    report = tmp_path / "hinglish" / "report.html"
    assert '<html lang="en">' in report.read_text(encoding="utf-8")
    page = Page(browser, report)
    assert page.page.get_by_text("Code-mixing").is_visible()
    assert page.page.locator("svg.chart[aria-label^='CMI'] rect").count() > 0
    assert page.page.locator("table.spellings", has_text="nahin").count() == 1
    page.check_common(artifacts / "hinglish.png")


def test_dataset_report(browser, llm_server, tmp_path, artifacts):
    llm_server.config.responder = served
    result = run_cli(
        *("factory", "generate", "--lang", "hindi", "--n", "40", "--min-words", "20"),
        *("--base-url", llm_server.base_url, "--api-key", TEST_KEY),
    )
    assert result.returncode == 0, result.stderr
    run_dir = next((tmp_path / "runs").iterdir())
    assert run_cli("factory", "report", str(run_dir)).returncode == 0
    page = Page(browser, run_dir / "report.html")
    p = page.page
    assert p.locator("details.examples").count() > 0
    assert p.locator("table.coverage tbody tr").count() >= 3
    rows = page.rows()
    assert len(rows) == 40
    p.locator("table.rows th", has_text="words").click()
    assert page.rows() != rows
    p.fill("input.search", "pwned")
    assert 0 < len(page.rows()) < 40
    p.locator("table.rows tbody tr").first.click()
    assert PAYLOAD in p.locator("dialog.detail[open]").inner_text()
    page.check_common(artifacts / "dataset.png")
