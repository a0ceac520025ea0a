"""Numbers about a cleaned run: what was kept, what was rejected and why, lengths, coverage.

`factory stats` prints them and the dataset card reports them, from the same function, so
the card's numbers are the data's numbers.
"""

import json
import sqlite3
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from factory.pricing import PriceTable
from factory.runconfig import RunConfig
from factory.textutil import words
from factory.vocab import read_word_list


@dataclass
class RunStats:
    prompts: int
    kept: int
    pending: int
    rejects: Counter[str]
    words_min: int = 0
    words_median: float = 0.0
    words_mean: float = 0.0
    words_max: int = 0
    coverage: dict[str, tuple[int, int]] = field(default_factory=dict)  # list -> (used, size)
    models: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None


def compute_stats(db: sqlite3.Connection, config: RunConfig, prices: PriceTable) -> RunStats:
    prompts = db.execute("SELECT COUNT(*) FROM prompts").fetchone()[0]
    pending = db.execute("SELECT COUNT(*) FROM prompts WHERE status = 'pending'").fetchone()[0]
    rejects = Counter(
        dict(db.execute("SELECT reason, COUNT(*) FROM rejects GROUP BY reason").fetchall())
    )
    kept_rows = db.execute(
        "SELECT v.text, p.variables FROM verdicts v JOIN prompts p ON p.id = v.prompt_id"
        " WHERE v.reason IS NULL"
    ).fetchall()
    stats = RunStats(prompts=prompts, kept=len(kept_rows), pending=pending, rejects=rejects)
    lengths = [len(words(text)) for text, _ in kept_rows]
    if lengths:
        stats.words_min, stats.words_max = min(lengths), max(lengths)
        stats.words_median = statistics.median(lengths)
        stats.words_mean = statistics.fmean(lengths)
    stats.coverage = _coverage(config, [json.loads(v) for _, v in kept_rows])
    stats.models = [m for (m,) in db.execute("SELECT DISTINCT model FROM responses ORDER BY model")]
    usage = db.execute(
        "SELECT COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), batch"
        " FROM responses GROUP BY batch"
    ).fetchall()
    price = prices.get(config.model)
    stats.cost = 0.0 if price else None
    for p_tok, c_tok, batch in usage:
        stats.prompt_tokens += p_tok
        stats.completion_tokens += c_tok
        if price:
            stats.cost += price.cost(p_tok, c_tok, batch=bool(batch))
    return stats


def _coverage(config: RunConfig, variables: list[dict]) -> dict[str, tuple[int, int]]:
    """How many entries of each word list the kept rows use, out of the list's size."""
    if config.provider == "import" or not config.vocab_dir:
        return {}
    coverage = {}
    for var, list_name in (
        ("noun", "nouns"),
        ("verb", "verbs"),
        ("adjective", "adjectives"),
        ("topic", "topics"),
    ):
        path = Path(config.vocab_dir) / f"{list_name}.txt"
        if not path.is_file() or not any(var in v for v in variables):
            continue
        used = {v[var] for v in variables if var in v}
        coverage[list_name] = (len(used), len(read_word_list(path)))
    return coverage


def format_stats(stats: RunStats) -> str:
    lines = [
        f"prompts   {stats.prompts:,}: {stats.kept:,} kept, {sum(stats.rejects.values()):,} "
        f"rejected, {stats.pending:,} pending",
    ]
    for reason, n in stats.rejects.most_common():
        lines.append(f"rejected  {n:>7,}  {reason}")
    if stats.kept:
        lines.append(
            f"words     min {stats.words_min}, median {stats.words_median:g}, "
            f"mean {stats.words_mean:.1f}, max {stats.words_max}"
        )
    for name, (used, size) in stats.coverage.items():
        lines.append(f"coverage  {name}: {used:,} of {size:,} used ({used / size:.1%})")
    lines.append(f"models    {', '.join(stats.models) or '-'}")
    cost = f"${stats.cost:,.4f}" if stats.cost is not None else "unknown (model not priced)"
    lines.append(
        f"tokens    {stats.prompt_tokens:,} in, {stats.completion_tokens:,} out; cost {cost}"
    )
    return "\n".join(lines)
