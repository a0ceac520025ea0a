"""Numbers about a cleaned run: what was kept, what was rejected and why, lengths, coverage,
diversity, and the judge's grades.

`factory stats` prints them and the dataset card and report show them, from the same
function, so the card's numbers are the data's numbers. The kept rows are read once, as a
stream (`RunStore.iter_kept`), and every number comes from that one pass with bounded state
(`factory.diversity.DatasetScan`).
"""

import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from factory.diversity import OPENING_WORDS, DatasetScan, DiversityStats
from factory.errors import KahaniError
from factory.languages import get_language
from factory.paths import TEMPLATES_DIR, VOCAB_DIR
from factory.pricing import PriceTable
from factory.settings import RunConfig
from factory.store import RunStore
from factory.templates import PromptTemplate, find_template, template_path
from factory.vocab import read_word_list

UNUSED_SHOWN = 12  # never-used entries named per list
# Lists counted when a template does not say which list feeds which variable.
DEFAULT_LISTS = {"noun": "nouns", "verb": "verbs", "adjective": "adjectives", "topic": "topics"}


@dataclass
class GradeStats:
    """The judge's grades of a `factory clean --judge` (see factory.grading)."""

    judge: str
    rubric: str
    score_key: str
    scale: tuple[float, float]
    min_score: float | None
    graded: int
    unscored: int
    histogram: Counter[float]  # score -> answers
    mean: float | None
    below: int  # rejected as low_score


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
    lengths: Counter[int] = field(default_factory=Counter)  # words -> kept texts
    coverage: dict[str, tuple[int, int]] = field(default_factory=dict)  # list -> (used, size)
    unused: dict[str, list[str]] = field(default_factory=dict)  # list -> entries never used
    models: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    diversity: DiversityStats | None = None
    grades: GradeStats | None = None


def compute_stats(store: RunStore, config: RunConfig, prices: PriceTable) -> RunStats:
    counts = store.counts()
    stats = RunStats(
        prompts=counts.done + counts.failed + counts.pending + counts.invalid,
        kept=0,
        pending=counts.pending,
        rejects=store.reject_counts(),
        models=store.models(),
        prompt_tokens=counts.usage.total_in,
        completion_tokens=counts.usage.total_out,
    )
    lists = _word_lists(config)
    used: dict[str, set[str]] = {name: set() for name, _ in lists.values()}
    # Kept texts are NFC already: validation normalizes every answer before it keeps it.
    scan = DatasetScan(config.lang, hinglish=config.lang == "hinglish", nfc_texts=True)
    for row in store.iter_kept():
        stats.kept += 1
        stats.lengths[scan.add(row.text, row.variables)] += 1
        for var, (name, _) in lists.items():
            if var in row.variables:
                used[name].add(str(row.variables[var]))
    if stats.kept:
        ordered = sorted(stats.lengths.elements())
        stats.words_min, stats.words_max = ordered[0], ordered[-1]
        stats.words_median = statistics.median(ordered)
        stats.words_mean = statistics.fmean(ordered)
        stats.diversity = scan.result()
    for name, entries in dict(lists.values()).items():
        if used[name]:  # a list none of the kept rows drew from (an unused slot) is left out
            stats.coverage[name] = (len(used[name] & set(entries)), len(entries))
            stats.unused[name] = [e for e in entries if e not in used[name]]
    price = prices.get(config.model)
    stats.cost = price.cost_of(counts.usage) if price else None
    stats.grades = _grade_stats(store)
    return stats


def _word_lists(config: RunConfig) -> dict[str, tuple[str, list[str]]]:
    """Variable -> (list name, entries) for the word lists that fed the run's prompts."""
    if config.provider == "import" or config.from_dataset is not None:
        return {}
    vocab_dir = Path(config.vocab_dir or VOCAB_DIR / config.lang)
    language = get_language(config.lang)
    try:
        path = find_template(config.template) if config.template else None
        header = PromptTemplate(
            path or template_path(TEMPLATES_DIR, language.kind, language.name)
        ).header
        sources = {**(header.variables or DEFAULT_LISTS), **header.diversify}
    except KahaniError:  # the template moved since the run: count the usual lists
        sources = DEFAULT_LISTS
    return {
        var: (name, read_word_list(vocab_dir / f"{name}.txt"))
        for var, name in sources.items()
        if (vocab_dir / f"{name}.txt").is_file()
    }


def _grade_stats(store: RunStore) -> GradeStats | None:
    grading = store.grading()
    if grading is None:
        return None
    grades = store.grades()
    scores = [g.score for g, _, _ in grades if g.score is not None]
    return GradeStats(
        judge=grading["judge"],
        rubric=grading["rubric"],
        score_key=grading["score_key"],
        scale=tuple(grading["scale"]),
        min_score=grading.get("min_score"),
        graded=len(grades),
        unscored=len(grades) - len(scores),
        histogram=Counter(scores),
        mean=statistics.fmean(scores) if scores else None,
        below=sum(1 for _, reason, _ in grades if reason == "low_score"),
    )


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
        unused = stats.unused.get(name, [])
        never = f"; never used: {_listed(unused, UNUSED_SHOWN)}" if unused else ""
        lines.append(f"coverage  {name}: {used:,} of {size:,} used ({used / size:.1%}){never}")
    if stats.diversity:
        lines.extend(format_diversity(stats.diversity))
    if stats.grades:
        lines.extend(format_grades(stats.grades))
    lines.append(f"models    {', '.join(stats.models) or '-'}")
    cost = f"${stats.cost:,.4f}" if stats.cost is not None else "unknown (model not priced)"
    lines.append(
        f"tokens    {stats.prompt_tokens:,} in, {stats.completion_tokens:,} out; cost {cost}"
    )
    return "\n".join(lines)


def format_diversity(d: DiversityStats) -> list[str]:
    """The diversity lines of `factory stats`: the top few of each, the report has the rest."""
    approx = "" if d.distinct_exact else " (HyperLogLog estimate)"
    lines = [
        f"openings  {_shares(d.openings, d.texts)} (first {OPENING_WORDS} words)",
        f"endings   {_shares(d.endings, d.texts)} (last {OPENING_WORDS} words)",
        "distinct  "
        + ", ".join(f"{n}-grams {share:.3f}" for n, share in d.distinct.items())
        + f" (unique / all{approx})",
    ]
    if d.self_bleu is not None:
        lines.append(
            f"self-bleu {d.self_bleu:.1f} on a sample of {d.self_bleu_sample:,} "
            "(0-100; lower is more varied)"
        )
    growth = ", ".join(f"{docs:,} texts {size:,}" for docs, size in d.growth[-3:])
    heaps = f"; grows as texts^{d.heaps:.2f}" if d.heaps is not None else ""
    lines.append(f"vocab     {d.vocabulary:,} words ({growth}){heaps}")
    if d.names:
        lines.append(f"names     {', '.join(f'{n} {c:,}' for n, c in d.names[:5])}")
    for slot, rows in d.length_by.items():
        if len(rows) > 1:
            by_median = sorted(rows, key=lambda r: r.median)
            short, long = by_median[0], by_median[-1]
            lines.append(
                f"lengths   by {slot}: median words from {short.median:g} ({short.value}) "
                f"to {long.median:g} ({long.value})"
            )
    if d.codemix:
        c = d.codemix
        lines.append(f"cmi       mean {c.mean:.1f}, median {c.median:g} over {c.texts:,} texts")
        if c.consistency is not None:
            lines.append(f"spelling  transliteration consistency {c.consistency:.3f} (1: one way)")
    return lines


def format_grades(g: GradeStats) -> list[str]:
    scores = ", ".join(f"{s:g}: {n:,}" for s, n in sorted(g.histogram.items()))
    mean = f"mean {g.mean:.2f}; " if g.mean is not None else ""
    lines = [f"grades    {g.graded:,} by {g.judge} ({g.rubric}, {g.score_key}): {mean}{scores}"]
    if g.unscored:
        lines.append(f"grades    {g.unscored:,} answers got no usable grade")
    if g.min_score is not None:
        lines.append(f"grades    {g.below:,} below --min-score {g.min_score:g} rejected")
    return lines


def _shares(top: list[tuple[str, int]], total: int, shown: int = 3) -> str:
    return ", ".join(f'"{text}" {count / total:.1%}' for text, count in top[:shown]) or "-"


def _listed(entries: list[str], shown: int) -> str:
    more = f" and {len(entries) - shown:,} more" if len(entries) > shown else ""
    return ", ".join(entries[:shown]) + more
