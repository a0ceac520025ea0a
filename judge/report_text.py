"""The terminal summary of an evaluation: the headline numbers with their 95% intervals."""

from judge.results import EvaluationSummary, Figure, Interval, PanelSummary


def _interval(entry: Interval) -> str:
    if entry.mean is None:
        return "-"
    return f"{entry.mean:.3f} [{entry.low:.3f}, {entry.high:.3f}] n={entry.n}"


def _figure(entry: Figure) -> str:
    if entry.value is None:
        return "- (undefined: too few scores, or too few distinct ones)"
    return f"{entry.value:.3f} [{entry.low:.3f}, {entry.high:.3f}]"


def format_panel(panel: PanelSummary) -> list[str]:
    """Each judge's overall score, and the agreement on it (all dimensions are in the
    summary and the report)."""
    lines = [f"panel    {len(panel.judges)} judge(s), {panel.repeats} judgement(s) of each item"]
    for j in panel.judges:
        lines.append(
            f"  {j.name:<28} overall {_interval(j.dimensions['overall'])}, "
            f"parse failures {j.parse_failure_rate:.1%}"
        )
        if "overall" in j.self_consistency:
            lines.append(f"    self-consistency (alpha)   {_figure(j.self_consistency['overall'])}")
    agreement = panel.agreement.get("overall")
    if agreement is not None:
        alpha = agreement.krippendorff_alpha
        lines.append(f"  agreement on overall         alpha {_figure(alpha)} n={alpha.n}")
        for pair in agreement.pairs:
            lines.append(
                f"    {pair.a} ~ {pair.b}: spearman {_figure(pair.spearman)}, "
                f"quadratic kappa {_figure(pair.quadratic_kappa)}"
            )
    return lines


def format_summary(summary: EvaluationSummary) -> str:
    lines = [
        f"model    {summary.model} ({summary.language}): {summary.completions:,} "
        f"completions of {summary.prompts:,} prompts",
    ]
    judge = summary.judge
    if judge is None:
        lines.append(f"judge    {summary.judge_note or 'did not run'}")
    else:
        lines.append(f"judge    {judge.name}, parse failures {judge.parse_failure_rate:.1%}")
        for name, entry in judge.dimensions.items():
            lines.append(f"  {name:<28} {_interval(entry)}")
        for kind, c in judge.controls.items():
            lines.append(
                f"  control {kind:<20} original above damaged in "
                f"{c.original_higher}/{c.pairs} (ties {c.ties})"
            )
        if summary.panel is not None:
            lines += format_panel(summary.panel)
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


def _rate(entry: dict) -> str:
    if entry.get("mean") is None:
        return "-"
    return f"{entry['mean']:.3f} [{entry['low']:.3f}, {entry['high']:.3f}]"


def format_pairwise(summary: dict) -> str:
    """The terminal summary of `judge compare-pairwise` (a `pairwise.json` dict): ratings best
    first, each pair's win rate (raw and length-controlled), position consistency, parse
    failures, controls."""
    consistency = summary["position_consistency"]
    lines = [
        f"judges   {', '.join(summary['judges'])}: {summary['pairs']:,} judged pairs of "
        f"{len(summary['systems'])} models, each in both orders",
    ]
    if summary["ratings"]:
        lines.append("ratings  Bradley-Terry, Elo scale (1000 = the models' mean), 95% interval")
        for rank, r in enumerate(summary["ratings"], start=1):
            lines.append(
                f"  {rank}. {r['system']:<26} {r['rating']:7.1f} [{r['low']:.1f}, {r['high']:.1f}]"
            )
    else:
        lines.append("ratings  none: no pair got a usable verdict in both orders")
    order = [r["system"] for r in summary["ratings"]] or summary["systems"]
    lines.append("wins     row over column, ties half; length-controlled after it")
    for i, a in enumerate(order):
        for b in order[i + 1 :]:
            w = summary["win_rates"][a][b]
            lc = summary["length_controlled"][a][b]
            controlled = (
                f"{lc['rate']:.3f} [{lc['low']:.3f}, {lc['high']:.3f}]"
                if lc["rate"] is not None
                else f"none ({lc['note']})"
            )
            lines.append(
                f"  {a} over {b}: {_rate(w['rate'])} "
                f"(W{w['wins']} T{w['ties']} L{w['losses']}); length-controlled {controlled}"
            )
    rate = consistency["rate"]
    lines.append(
        f"position inconsistent in {consistency['inconsistent']:,} of {consistency['pairs']:,} "
        f"pairs ({'-' if rate is None else f'{rate:.1%}'}: counted as ties)"
    )
    failures = summary["parse_failure_rate"]
    lines.append(
        f"parse    failures {failures:.1%} of verdicts"
        + (" (left out, never guessed)" if failures else "")
    )
    for name, figures in (summary.get("by_judge") or {}).items():
        ratings = ", ".join(f"{r['system']} {r['rating']:.0f}" for r in figures["ratings"])
        own = figures["consistency"]["rate"]
        lines.append(
            f"  {name}: {ratings or 'no ratings'}; position inconsistent "
            f"{'-' if own is None else f'{own:.1%}'}, parse failures "
            f"{figures['parse_failure_rate']:.1%}"
        )
    agreement = summary.get("agreement")
    if agreement:
        alpha = agreement["krippendorff_alpha"]
        shown = (
            "-"
            if alpha["value"] is None
            else f"{alpha['value']:.3f} [{alpha['low']:.3f}, {alpha['high']:.3f}]"
        )
        lines.append(f"  agreement of the judges' outcomes: alpha {shown} n={alpha['n']}")
    for kind, c in summary["controls"].items():
        lines.append(
            f"control  {kind:<13} original won {c['original_wins']}/{c['pairs']} "
            f"(ties {c['ties']}, lost {c['original_losses']})"
        )
    return "\n".join(lines)
