"""Numbers about a cleaned run: what was kept, what was rejected and why, lengths, coverage.

`factory stats` prints them and the dataset card and report show them, from the same
function, so the card's numbers are the data's numbers.
"""

import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from factory.paths import VOCAB_DIR
from factory.pricing import PriceTable
from factory.settings import RunConfig
from factory.store import RunStore
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


def compute_stats(store: RunStore, config: RunConfig, prices: PriceTable) -> RunStats:
    counts = store.counts()
    kept = store.kept()
    stats = RunStats(
        prompts=counts.done + counts.failed + counts.pending,
        kept=len(kept),
        pending=counts.pending,
        rejects=store.reject_counts(),
        models=store.models(),
        prompt_tokens=counts.usage.total_in,
        completion_tokens=counts.usage.total_out,
    )
    lengths = [len(words(row.text)) for row in kept]
    if lengths:
        stats.words_min, stats.words_max = min(lengths), max(lengths)
        stats.words_median = statistics.median(lengths)
        stats.words_mean = statistics.fmean(lengths)
    stats.coverage = _coverage(config, [row.variables for row in kept])
    price = prices.get(config.model)
    stats.cost = price.cost_of(counts.usage) if price else None
    return stats


def _coverage(config: RunConfig, variables: list[dict]) -> dict[str, tuple[int, int]]:
    """How many entries of each word list the kept rows use, out of the list's size."""
    if config.provider == "import":
        return {}
    vocab_dir = Path(config.vocab_dir or VOCAB_DIR / config.lang)
    coverage = {}
    for var, list_name in (
        ("noun", "nouns"),
        ("verb", "verbs"),
        ("adjective", "adjectives"),
        ("topic", "topics"),
    ):
        path = vocab_dir / f"{list_name}.txt"
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
