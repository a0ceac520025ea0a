"""The dataset report of a `factory generate` run: what was kept, what was rejected and why
(with examples), lengths, word-list coverage, diversity, the judge's grades, duplicate clusters,
and how fast and how dear the run was. It receives the numbers (`DatasetPage`, made by
`factory.report` from the run store) and draws them; it reads no run folder itself."""

from dataclasses import dataclass, field
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
    rows: list[dict]  # one per prompt: id, verdict, words, tokens, text, detail, score?, ...
    # The judge's grades (`factory clean --judge`): every score, and the graded texts nearest
    # the threshold on both sides [{id, score, verdict, reasoning, text}].
    scores: list[float] = field(default_factory=list)
    near_threshold: list[dict] = field(default_factory=list)


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
        diversity_charts=_diversity_charts(page.stats.diversity),
        grades={"chart": _score_chart(page), "near": page.near_threshold},
        table=_table(page.rows),
    )
    return write(out, html)


def _diversity_charts(diversity: Any) -> list:
    """Vocabulary growth, and for Hinglish the CMI distribution."""
    if diversity is None:
        return []
    made = [
        charts.line_chart(
            [(float(d), float(v)) for d, v in diversity.growth],
            "distinct words as texts are added",
            "texts",
        )
    ]
    if diversity.codemix is not None:
        width = 50 / len(diversity.codemix.histogram)
        values = [
            (i + 0.5) * width for i, n in enumerate(diversity.codemix.histogram) for _ in range(n)
        ]
        made.append(
            charts.histogram(
                values,
                "CMI per text",
                lo=0,
                hi=50,
                bins=len(diversity.codemix.histogram),
                xlabel="code-mixing index",
            )
        )
    return made


def _score_chart(page: DatasetPage) -> Any:
    grades = page.stats.grades
    if grades is None or not page.scores:
        return None
    low, high = grades.scale
    return charts.histogram(
        page.scores,
        f"{grades.score_key} score per graded text",
        lo=low,
        hi=high,
        bins=max(1, min(20, int(high - low) + 1)),
        xlabel=f"score ({grades.judge})",
    )


def _table(rows: list[dict]) -> dict[str, Any]:
    return {
        "page": PAGE,
        "columns": [
            {"key": "id", "label": "prompt"},
            {"key": "verdict", "label": "verdict"},
            {"key": "words", "label": "words", "num": True},
            {"key": "tokens", "label": "tokens", "num": True},
            *([{"key": "score", "label": "score", "num": True}] if _graded(rows) else []),
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


def _graded(rows: list[dict]) -> bool:
    return any(r.get("score") is not None for r in rows)
