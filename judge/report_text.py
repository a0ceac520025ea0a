"""The terminal summary of an evaluation: the headline numbers with their 95% intervals."""

from judge.results import EvaluationSummary, Interval


def _interval(entry: Interval) -> str:
    if entry.mean is None:
        return "-"
    return f"{entry.mean:.3f} [{entry.low:.3f}, {entry.high:.3f}] n={entry.n}"


def format_summary(summary: EvaluationSummary) -> str:
    lines = [
        f"model    {summary.model} ({summary.language}): {summary.completions:,} "
        f"completions of {summary.prompts:,} prompts",
    ]
    judge = summary.judge
    if judge is None:
        lines.append(f"judge    {summary.judge_note or 'did not run'}")
    else:
        lines.append(
            f"judge    {judge.provider}:{judge.model}, parse failures "
            f"{judge.parse_failure_rate:.1%}"
        )
        for name, entry in judge.dimensions.items():
            lines.append(f"  {name:<28} {_interval(entry)}")
        for kind, c in judge.controls.items():
            lines.append(
                f"  control {kind:<20} original above damaged in "
                f"{c.original_higher}/{c.pairs} (ties {c.ties})"
            )
    if summary.heldout is not None:
        h = summary.heldout
        lines.append(
            f"heldout  {h.texts:,} texts: perplexity {h.perplexity:.2f}, "
            f"bits per byte {h.bits_per_byte:.4f}"
        )
    lines.append("metrics")
    for name, entry in summary.metrics.items():
        shown = f"skipped: {entry.skipped}" if entry.skipped else _interval(entry)
        lines.append(f"  {name:<28} {shown}")
    return "\n".join(lines)
