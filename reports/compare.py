"""One page comparing evaluations of several models on the same prompts. It receives the
comparison `judge.compare` computed (win rates, paired bootstrap, completions side by side)
and draws it."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reports import charts
from reports.render import render, write

PAGE = 200


@dataclass(frozen=True)
class Comparison:
    title: str
    lang: str
    names: list[str]  # model names as shown
    folders: list[str]
    summaries: list[dict[str, Any]]  # each run's summary.json
    shared: int  # prompts every run answered
    unshared: list[int]  # per run, prompts the others did not answer
    win_measure: str | None
    wins: list[dict]  # {a, b, n, win, tie, loss}
    significance: list[dict]  # {measure, a, b, result: {mean_difference, low, high, p_value, n}}
    prompts: list[dict]  # {prompt_id, prompt, completions: {name: text}, m0.. per-prompt score}


def render_comparison(page: Comparison, out: Path) -> Path:
    html = render(
        "compare.html.j2",
        lang=page.lang,
        title=page.title,
        runs=[
            {"name": n, "dir": d, "summary": s}
            for n, d, s in zip(page.names, page.folders, page.summaries, strict=True)
        ],
        shared=page.shared,
        unshared=page.unshared,
        bars=_bars(page.summaries, page.names),
        win_measure=page.win_measure,
        wins=page.wins,
        significance=page.significance,
        table=_table(page),
    )
    return write(out, html)


def _bars(summaries: list[dict], names: list[str]) -> Any:
    if not all(s.get("judge") for s in summaries):
        return None
    groups = {
        d: [
            (n, e["mean"], e["low"], e["high"])
            for n, s in zip(names, summaries, strict=True)
            if (e := s["judge"]["dimensions"].get(d))
        ]
        for d in summaries[0]["judge"]["dimensions"]
    }
    return charts.interval_bars(groups, "judge dimensions, mean with 95% interval")


def _table(page: Comparison) -> dict[str, Any]:
    """Rows per prompt; the detail shows each model's completions side by side."""
    scored = page.win_measure is not None
    return {
        "page": PAGE,
        "columns": [
            {"key": "prompt_id", "label": "prompt id"},
            {"key": "prompt", "label": "prompt"},
            *({"key": f"m{m}", "label": n, "num": True} for m, n in enumerate(page.names)),
        ],
        "rows": page.prompts,
        "search": ["prompt", "completions", "prompt_id"],
        "select": None,
        "range": {"key": "m0", "label": f"{page.names[0]} score"} if scored else None,
        "detail": [
            {"key": "prompt", "label": "Prompt"},
            {"key": "completions", "label": "Completions, side by side", "kind": "cols"},
        ],
    }
