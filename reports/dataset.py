"""The dataset report of a `factory generate` run: what was kept, what was rejected and why
(with examples), lengths, word-list coverage, duplicate clusters, and how fast and how dear the
run was. It receives the numbers (`DatasetPage`, made by `factory.report` from the run store)
and draws them; it reads no run folder itself."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reports import charts
from reports.render import render, write

PAGE = 200  # table rows drawn at once


@dataclass(frozen=True)
class DatasetPage:
    title: str
    lang: str  # the page's language code
    settings: dict[str, Any]  # what made the run, shown as a list
    stats: Any  # factory.stats.RunStats: prompts, kept, pending, rejects, words_*, coverage...
    examples: dict[str, list[dict]]  # reason -> [{id, detail, text}]
    clusters: list[dict]  # [{id, size, text, copies: [{id, similarity, text}]}]
    answers_over_time: list[tuple[float, float]]  # (minutes since start, answers so far)
    cost_over_time: list[tuple[float, float]] | None  # (minutes, dollars so far); None: unpriced
    rows: list[dict]  # one per prompt: id, verdict, words, tokens, text, detail, ...


def render_dataset(page: DatasetPage, out: Path) -> Path:
    kept_words = [r["words"] for r in page.rows if r["verdict"] == "kept"]
    tokens = [r["tokens"] for r in page.rows if r["tokens"] is not None]
    made = []
    per_minute = None
    if page.answers_over_time:
        made.append(
            charts.line_chart(page.answers_over_time, "answers received (running total)", "minutes")
        )
        span = max(page.answers_over_time[-1][0], 1e-9)
        per_minute = page.answers_over_time[-1][1] / span
    if page.answers_over_time and page.cost_over_time:
        made.append(charts.line_chart(page.cost_over_time, "cost in $ (running total)", "minutes"))
    html = render(
        "dataset.html.j2",
        lang=page.lang,
        title=page.title,
        settings=page.settings,
        stats=page.stats,
        examples=page.examples,
        clusters=page.clusters,
        time={"charts": made, "per_minute": per_minute},
        length_charts=[
            charts.histogram(kept_words, "words per kept text", xlabel="words"),
            charts.histogram(tokens, "completion tokens per answer", xlabel="tokens"),
        ],
        table=_table(page.rows),
    )
    return write(out, html)


def _table(rows: list[dict]) -> dict[str, Any]:
    return {
        "page": PAGE,
        "columns": [
            {"key": "id", "label": "prompt"},
            {"key": "verdict", "label": "verdict"},
            {"key": "words", "label": "words", "num": True},
            {"key": "tokens", "label": "tokens", "num": True},
            {"key": "text", "label": "text"},
        ],
        "rows": rows,
        "search": ["text", "detail", "id"],
        "select": {"key": "verdict", "label": "verdicts"},
        "range": {"key": "words", "label": "words"},
        "detail": [
            {"key": "id", "label": "Prompt"},
            {"key": "verdict", "label": "Verdict"},
            {"key": "detail", "label": "Detail"},
            {"key": "variables", "label": "Words asked for", "kind": "kv"},
            {"key": "text", "label": "Text"},
            {"key": "duplicate_of", "label": "Duplicate of"},
            {"key": "raw", "label": "Raw answer"},
        ],
    }
