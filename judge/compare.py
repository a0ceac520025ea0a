"""`judge compare`: models scored on the same prompts, side by side. Prompts, not samples, are
the paired items: sample k of one model has nothing to do with sample k of another, while both
answered the same prompt. Significance is `aggregate.paired_bootstrap` over them."""

from collections import defaultdict
from dataclasses import asdict
from itertools import combinations
from pathlib import Path
from statistics import fmean

from factory.errors import KahaniError
from factory.languages import get_language
from judge.aggregate import paired_bootstrap
from judge.results import EvaluationSummary, read_scores, read_summary
from reports.compare import Comparison, render_comparison
from reports.render import ReportError


def per_prompt(scores: list[dict], measure: str) -> dict[str, float | None]:
    """Mean of a judge dimension (`judge:<dim>`) or metric over each prompt's samples."""
    values: dict[str, list[float]] = defaultdict(list)
    for s in scores:
        if measure.startswith("judge:"):
            value = ((s.get("judge") or {}).get("scores") or {}).get(measure[6:])
        else:
            value = (s.get("metrics") or {}).get(measure)
        values.setdefault(s["prompt_id"], [])
        if value is not None:
            values[s["prompt_id"]].append(float(value))
    return {p: fmean(v) if v else None for p, v in values.items()}


def shared_measures(summaries: list[EvaluationSummary]) -> list[str]:
    """Judge dimensions all runs have, then metrics all runs computed with a direction."""
    measures = []
    if all(s.judge for s in summaries):
        dims = [set(s.judge.dimensions) for s in summaries]  # type: ignore[union-attr]
        first = summaries[0].judge.dimensions  # type: ignore[union-attr]
        measures += [f"judge:{d}" for d in first if d in set.intersection(*dims)]
    for name in summaries[0].metrics:
        usable = [s.metrics.get(name) for s in summaries]
        if all(e and e.mean is not None and e.higher_is_better is not None for e in usable):
            measures.append(name)
    return measures


def win_rates(values: list[list[float | None]], names: list[str]) -> list[dict]:
    """For each pair, the share of prompts where model A scored higher, equal, lower (prompts
    either lacks a score for are left out)."""
    rows = []
    for i, j in combinations(range(len(names)), 2):
        both = [(a, b) for a, b in zip(values[i], values[j], strict=True) if None not in (a, b)]
        n = len(both) or 1
        rows.append(
            {
                "a": names[i],
                "b": names[j],
                "n": len(both),
                "win": sum(a > b for a, b in both) / n,
                "tie": sum(a == b for a, b in both) / n,
                "loss": sum(a < b for a, b in both) / n,
            }
        )
    return rows


def compare(run_dirs: list[Path], out: Path) -> Path:
    """Write the comparison page of two or more evaluation folders."""
    if len(run_dirs) < 2:
        raise KahaniError("judge compare needs at least two evaluation folders")
    summaries = [read_summary(d) for d in run_dirs]
    scores = [read_scores(d) for d in run_dirs]
    names = [s.model for s in summaries]
    if len(set(names)) < len(names):  # the same model twice, e.g. two seeds: use folder names
        names = [f"{n} ({d.name})" for n, d in zip(names, run_dirs, strict=True)]
    shared = set.intersection(*({s["prompt_id"] for s in rows} for rows in scores))
    if not shared:
        raise KahaniError("the evaluations share no prompts: score them with the same --prompts")
    prompt_ids = sorted(shared)
    measures = shared_measures(summaries)
    values = {
        m: [[per_prompt(rows, m).get(p) for p in prompt_ids] for rows in scores] for m in measures
    }
    win_measure = "judge:overall" if "judge:overall" in measures else (measures or [None])[0]
    significance = [
        {
            "measure": m,
            "a": names[i],
            "b": names[j],
            "result": asdict(paired_bootstrap(values[m][i], values[m][j])),
        }
        for m in measures
        for i, j in combinations(range(len(names)), 2)
    ]
    page = Comparison(
        title=f"Comparison: {' vs '.join(names)}",
        lang=get_language(summaries[0].language).html_lang,
        names=names,
        folders=[d.name for d in run_dirs],
        summaries=[s.model_dump(mode="json") for s in summaries],
        shared=len(prompt_ids),
        unshared=[len({s["prompt_id"] for s in rows} - shared) for rows in scores],
        win_measure=win_measure,
        wins=win_rates(values.get(win_measure, []), names),
        significance=significance,
        prompts=_side_by_side(names, scores, prompt_ids, values.get(win_measure)),
    )
    try:
        return render_comparison(page, out)
    except ReportError as err:
        raise KahaniError(str(err)) from None


def _side_by_side(
    names: list[str],
    scores: list[list[dict]],
    prompt_ids: list[str],
    values: list[list[float | None]] | None,
) -> list[dict]:
    """One row per prompt with each model's completions of it and its per-prompt score."""
    by_prompt = [defaultdict(list) for _ in names]
    for model_rows, bucket in zip(scores, by_prompt, strict=True):
        for s in sorted(model_rows, key=lambda r: r.get("sample", 0)):
            bucket[s["prompt_id"]].append(s)
    rows = []
    for k, pid in enumerate(prompt_ids):
        row: dict = {"prompt_id": pid, "prompt": by_prompt[0][pid][0]["prompt"]}
        row["completions"] = {
            n: "\n\n".join(
                f"[sample {s.get('sample', 0)}, overall "
                f"{((s.get('judge') or {}).get('scores') or {}).get('overall', '–')}]\n"
                f"{s['completion']}"
                for s in bucket[pid]
            )
            for n, bucket in zip(names, by_prompt, strict=True)
        }
        for m in range(len(names)):
            row[f"m{m}"] = values[m][k] if values else None
        rows.append(row)
    return rows
