"""Render a synthetic 3,000-sample evaluation report and time it in Chromium.

Budgets (issue 7): the file under 10 MB, the page painted and loaded under 2 s. Prints each
number with its ratio to the budget (below 1.0 is within it). Needs Debian's chromium and the
playwright package. Usage: python bench/report_render.py [--samples 3000]
"""

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

from judge.aggregate import mean_interval
from judge.report import evaluation_report
from judge.results import (
    EvaluationSummary,
    Interval,
    JudgeSummary,
    MetricSummary,
    SamplingSettings,
    write_scores,
    write_summary,
)
from judge.rubric import DIMENSIONS

SIZE_BUDGET = 10 * 1024 * 1024
TIME_BUDGET_S = 2.0
WORDS = ["एक", "छोटे", "गाँव", "में", "मीना", "नाम", "की", "लड़की", "रहती", "थी", "उसे", "पेड़"]
WORDS += ["पक्षी", "और", "नदी", "बहुत", "पसंद", "थे", "অনেক", "দিন"]


def synthetic_evaluation(folder: Path, samples: int, per_prompt: int = 3) -> None:
    """summary.json and scores.jsonl shaped like `judge score` output, with ~120-word stories."""
    rng = random.Random(0)
    dims = DIMENSIONS["story"]
    rows = []
    for i in range(samples):
        pid = f"hindi-eval-{i // per_prompt:06d}"
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(60, 180)))
        scores = {d: rng.randint(1, 10) for d in dims} if rng.random() > 0.02 else None
        rows.append(
            {
                "id": f"{pid}-s{i % per_prompt}",
                "prompt_id": pid,
                "prompt": " ".join(rng.choice(WORDS) for _ in range(20)),
                "reference": None,
                "sample": i % per_prompt,
                "completion": text,
                "finish_reason": "stop",
                "metrics": {"distinct_1": rng.random(), "length_words": len(text.split())},
                "judge": {"scores": scores, "reasoning": "ठीक है, कहानी सरल है।", "problem": ""},
            }
        )
    column = {d: [r["judge"]["scores"] and r["judge"]["scores"][d] for r in rows] for d in dims}
    metrics = {
        m: MetricSummary(
            **vars(mean_interval([r["metrics"][m] for r in rows])),
            higher_is_better=True,
            signature=m,
        )
        for m in ("distinct_1", "length_words")
    }
    summary = EvaluationSummary(
        model="synthetic",
        language="hindi",
        prompts=samples // per_prompt,
        samples_per_prompt=per_prompt,
        completions=samples,
        settings=SamplingSettings(max_tokens=200, temperature=0.8, top_k=50, seed=0),
        metrics=metrics,
        judge=JudgeSummary(
            provider="openai",
            model="gpt-4o",
            parse_failure_rate=sum(r["judge"]["scores"] is None for r in rows) / samples,
            dimensions={d: Interval(**vars(mean_interval(v))) for d, v in column.items()},
            controls={},
        ),
    )
    write_summary(folder, summary)
    write_scores(folder, rows)


def browser_times(report: Path) -> tuple[float, float]:
    """Seconds to first contentful paint and to the `load` event, from file://."""
    from playwright.sync_api import sync_playwright

    args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=args)
        page = browser.new_page()
        page.goto(report.as_uri(), wait_until="load")
        paint, load = page.evaluate(
            """() => [
              performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN,
              performance.getEntriesByType('navigation')[0].loadEventEnd]"""
        )
        browser.close()
    return paint / 1000, load / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        synthetic_evaluation(folder, args.samples)
        start = time.perf_counter()
        report = evaluation_report(folder)
        render_s = time.perf_counter() - start
        size = report.stat().st_size
        print(f"samples        {args.samples:,}")
        print(f"render (python) {render_s:.2f} s")
        print(f"file size      {size / 1e6:.2f} MB  ({size / SIZE_BUDGET:.2f} of the 10 MB budget)")
        paint, load = browser_times(report)
        for name, seconds in (("first paint", paint), ("load event", load)):
            print(f"{name:<14} {seconds:.2f} s  ({seconds / TIME_BUDGET_S:.2f} of the 2 s budget)")


if __name__ == "__main__":
    main()
