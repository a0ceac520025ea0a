"""Training reports and tokenizer comparisons in a real browser (Debian's Chromium through
Playwright, from file://): curves of several runs overlaid, the completions each checkpoint
wrote, a sweep's ranking, and model-written markup shown as text that runs nothing."""

import json
import re
from pathlib import Path

from tests.conftest import Page, run_cli
from tests.trainer_helpers import CORPUS

pytest_plugins = ["tests.trainer_helpers"]  # fixtures: tok_dir, hindi_data, pretrained_run

PAYLOAD = "<script>window.pwned=1</script><img src=x onerror=window.pwned=2>"


def test_training_report_overlays_runs_and_keeps_sample_text_inert(
    browser, tmp_path, pretrained_run, hindi_data, artifacts
):
    continued = tmp_path / "continued"
    result = run_cli(
        *("trainer", "train", "--init", str(pretrained_run), "--data", str(hindi_data)),
        *("--steps", "6", "--eval-every", "3", "--checkpoint-every", "3", "--lr", "1e-3"),
        *("--freeze", "embeddings", "--out", str(continued)),
    )
    assert result.returncode == 0, result.stderr
    # a model that writes markup: its completions must reach the page as text
    with open(continued / "samples.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"step": 6, "prompt": "एक दिन", "completion": PAYLOAD}) + "\n")
    report = tmp_path / "report.html"
    made = run_cli("trainer", "report", str(pretrained_run), str(continued), "--out", str(report))
    assert made.returncode == 0, made.stderr
    html = report.read_text(encoding="utf-8")
    assert '<html lang="hi">' in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")

    page = Page(browser, report)
    p = page.page
    assert p.locator("table.runs tbody tr").count() == 2
    for title in (
        "training loss",
        "validation bits per byte",
        "learning rate",
        "tokens per second",
    ):
        chart = p.locator(f"svg.chart[aria-label='{title}']")
        assert chart.locator("polyline").count() == 2, title  # one curve per run
        assert chart.locator("g.legend", has_text="continued").count() == 1
    samples = page.rows()
    checkpoints = {int(row.split("\t")[1]) for row in samples}
    assert {10, 20, 30, 40, 3, 6} <= checkpoints  # every checkpoint of both runs
    p.select_option("select.filter-select", label="continued")
    assert 0 < len(page.rows()) < len(samples)
    p.select_option("select.filter-select", index=0)
    p.fill("input.search", "pwned")
    assert len(page.rows()) == 1
    p.locator("table.rows tbody tr").first.click()
    assert PAYLOAD in p.locator("dialog.detail[open]").inner_text()
    settings = p.locator("dl.settings").first.inner_text()
    assert "train.steps" in settings and "model.d_model" in settings
    page.check_common(artifacts / "training.png")


def test_sweep_report_ranks_the_trials(browser, tmp_path, hindi_data, artifacts):
    config = tmp_path / "sweep.toml"
    config.write_text(
        f'data = "{hindi_data}"\nout = "{tmp_path / "sw"}"\n'
        "[fixed]\npreset = 'tiny'\nblock_size = 64\nsteps = 4\neval_every = 2\n"
        "[search]\nlr = [0.0003, 0.003]\n"
    )
    assert run_cli("trainer", "sweep", str(config)).returncode == 0
    made = run_cli("trainer", "report", str(tmp_path / "sw"))
    assert made.returncode == 0, made.stderr
    page = Page(browser, tmp_path / "sw" / "report.html")
    ranked = page.page.locator("table.sweep tbody tr").all_inner_texts()
    assert len(ranked) == 2
    bpb = [float(row.split("\t")[2]) for row in ranked]
    assert bpb == sorted(bpb)
    chart = page.page.locator("svg.chart[aria-label='validation bits per byte']")
    assert chart.locator("g.legend", has_text="lr=0.003").count() == 1
    page.check_common(artifacts / "sweep.png")


def test_tokenizer_comparison_prints_a_table_and_writes_a_chart(
    browser, tmp_path, tok_dir, artifacts
):
    char = tmp_path / "char"
    made = run_cli(
        "trainer",
        "tokenizer",
        str(CORPUS / "hindi.jsonl"),
        "--kind",
        "char",
        "--vocab",
        "400",
        "--out",
        str(char),
    )
    assert made.returncode == 0, made.stderr
    data = [str(CORPUS / f"{lang}.jsonl") for lang in ("hindi", "bangla")]
    out = tmp_path / "tokenizers.html"
    result = run_cli(
        "trainer",
        "tokenizer",
        *data,
        "--compare",
        str(tok_dir),
        "--compare",
        str(char),
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    rows = {
        (m[1], m[2]): float(m[3])
        for m in re.finditer(r"^(\w+)\s+(\S+)\s+([\d.]+)\s+[\d.]+\s+[\d.]+%$", result.stdout, re.M)
    }
    assert len(rows) == 4
    # whole words and subwords beat single letters: fewer tokens per word
    assert rows[("hindi", Path(tok_dir).name)] < rows[("hindi", "char")]
    page = Page(browser, out)
    assert page.page.locator("table.tokenizers tbody tr").count() == 4
    assert page.page.locator("svg.chart").count() == 3
    page.check_common(artifacts / "tokenizers.png")
