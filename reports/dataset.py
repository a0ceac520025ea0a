"""The dataset report of a `factory generate` run: what was kept, what was rejected and why
(with examples), lengths, word-list coverage, duplicate clusters, and how fast and how dear the
run was. The counts come from `factory.stats.compute_stats`, the same numbers `factory stats`
prints and the dataset card shows."""

import json
import sqlite3
from pathlib import Path
from typing import Any

from factory.clean import ensure_schema
from factory.paths import PRICES_FILE
from factory.pricing import PriceTable, load_prices
from factory.runconfig import load_config
from factory.stats import compute_stats
from factory.store import RunStore
from factory.textutil import words
from reports import charts
from reports.render import html_lang, render, write

EXAMPLES_PER_REASON = 3
CLUSTERS = 10  # largest duplicate clusters shown
PAGE = 200


def _rejects(db: sqlite3.Connection, reasons: list[str]) -> dict[str, list[dict]]:
    """A few rejected answers per reason, with the detail and the raw answer as it came."""
    examples = {}
    for reason in reasons:
        rows = db.execute(
            "SELECT v.prompt_id, v.detail, v.text, r.text FROM verdicts v"
            " LEFT JOIN responses r ON r.prompt_id = v.prompt_id"
            " WHERE v.reason = ? ORDER BY v.prompt_id LIMIT ?",
            (reason, EXAMPLES_PER_REASON),
        ).fetchall()
        examples[reason] = [
            {"id": pid, "detail": detail, "text": text or raw or ""}
            for pid, detail, text, raw in rows
        ]
    return examples


def _clusters(db: sqlite3.Connection) -> list[dict]:
    """The kept texts with the most duplicates, each with its copies and their similarity."""
    heads = db.execute(
        "SELECT duplicate_of, COUNT(*) FROM verdicts WHERE duplicate_of IS NOT NULL"
        " GROUP BY duplicate_of ORDER BY COUNT(*) DESC, duplicate_of LIMIT ?",
        (CLUSTERS,),
    ).fetchall()
    clusters = []
    for head, size in heads:
        kept = db.execute("SELECT text FROM verdicts WHERE prompt_id = ?", (head,)).fetchone()
        copies = db.execute(
            "SELECT prompt_id, similarity, text FROM verdicts WHERE duplicate_of = ?"
            " ORDER BY similarity DESC LIMIT 5",
            (head,),
        ).fetchall()
        clusters.append(
            {
                "id": head,
                "size": size,
                "text": kept[0] if kept else "",
                "copies": [{"id": i, "similarity": s, "text": t} for i, s, t in copies],
            }
        )
    return clusters


def _over_time(db: sqlite3.Connection, prices: PriceTable, model: str) -> dict[str, Any]:
    """Answers and dollars as running totals over minutes since the first request."""
    rows = db.execute(
        "SELECT started_at, finished_at, prompt_tokens, completion_tokens, batch FROM responses"
        " ORDER BY finished_at"
    ).fetchall()
    if not rows:
        return {"charts": [], "per_minute": None}
    start = min(r[0] for r in rows)
    price = prices.get(model)
    answers, cost, spent = [], [], 0.0
    for i, (_, finished, p_tok, c_tok, batch) in enumerate(rows, 1):
        minute = (finished - start) / 60
        answers.append((minute, i))
        if price:
            spent += price.cost(p_tok, c_tok, batch=bool(batch))
            cost.append((minute, spent))
    span = max(rows[-1][1] - start, 1e-9) / 60
    made = [charts.line_chart(answers, "answers received (running total)", "minutes")]
    if price:
        made.append(charts.line_chart(cost, "cost in $ (running total)", "minutes"))
    return {"charts": made, "per_minute": len(rows) / span}


def _table(db: sqlite3.Connection) -> dict[str, Any]:
    rows = db.execute(
        "SELECT p.id, p.variables, p.status, v.reason, v.detail, v.text, v.duplicate_of,"
        " r.text, r.completion_tokens FROM prompts p LEFT JOIN verdicts v ON v.prompt_id = p.id"
        " LEFT JOIN responses r ON r.prompt_id = p.id ORDER BY p.idx"
    ).fetchall()
    data = []
    for pid, variables, status, reason, detail, text, dup, raw, tokens in rows:
        shown = text or raw or ""
        data.append(
            {
                "id": pid,
                "verdict": reason or ("kept" if text is not None else status),
                "words": len(words(shown)) if shown else None,
                "tokens": tokens,
                "text": shown,
                "detail": detail,
                "duplicate_of": dup,
                "variables": json.loads(variables),
                "raw": raw,
            }
        )
    return {
        "page": PAGE,
        "columns": [
            {"key": "id", "label": "prompt"},
            {"key": "verdict", "label": "verdict"},
            {"key": "words", "label": "words", "num": True},
            {"key": "tokens", "label": "tokens", "num": True},
            {"key": "text", "label": "text"},
        ],
        "rows": data,
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


def render_dataset(run_dir: Path, out: Path | None = None, prices: Path = PRICES_FILE) -> Path:
    """Render `run_dir/report.html` (or `out`) from the run's config.json and store.sqlite."""
    config = load_config(run_dir)
    price_table = load_prices(prices)
    store = RunStore(run_dir / "store.sqlite")
    try:
        db = store.db
        ensure_schema(db)
        stats = compute_stats(db, config, price_table)
        table = _table(db)
        kept_words = [r["words"] for r in table["rows"] if r["verdict"] == "kept"]
        tokens = [r["tokens"] for r in table["rows"] if r["tokens"] is not None]
        html = render(
            "dataset.html.j2",
            lang=html_lang(config.language),
            title=f"Dataset {config.name}",
            config=config,
            stats=stats,
            examples=_rejects(db, [reason for reason, _ in stats.rejects.most_common()]),
            clusters=_clusters(db),
            time=_over_time(db, price_table, config.model),
            length_charts=[
                charts.histogram(kept_words, "words per kept text", xlabel="words"),
                charts.histogram(tokens, "completion tokens per answer", xlabel="tokens"),
            ],
            table=table,
        )
    finally:
        store.close()
    return write(out or run_dir / "report.html", html)
