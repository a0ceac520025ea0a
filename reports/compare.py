"""One page comparing evaluations of several models on the same prompts. Prompts, not samples,
are the paired items: sample k of one model has nothing to do with sample k of another, while
both answered the same prompt. Significance is `judge.aggregate.paired_bootstrap` over them."""

from collections import defaultdict
from itertools import combinations
from pathlib import Path
from statistics import fmean
from typing import Any

from factory.errors import KahaniError
from judge.aggregate import paired_bootstrap
from reports import charts
from reports.evaluation import load_evaluation
from reports.render import html_lang, render, write

PAGE = 200


def _per_prompt(scores: list[dict], measure: str) -> dict[str, float | None]:
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


def _measures(summaries: list[dict]) -> list[str]:
    """Judge dimensions all runs have, then metrics all runs computed with a direction."""
    measures = []
    if all(s.get("judge") for s in summaries):
        dims = [set(s["judge"]["dimensions"]) for s in summaries]
        measures += [
            f"judge:{d}"
            for d in summaries[0]["judge"]["dimensions"]
            if d in set.intersection(*dims)
        ]
    for name in summaries[0].get("metrics", {}):
        usable = [s.get("metrics", {}).get(name, {}) for s in summaries]
        if all("mean" in e and e.get("higher_is_better") is not None for e in usable):
            measures.append(name)
    return measures


def _names(summaries: list[dict], run_dirs: list[Path]) -> list[str]:
    names = [s["model"] for s in summaries]
    if len(set(names)) < len(names):  # the same model twice, e.g. two seeds: use folder names
        names = [f"{n} ({d.name})" for n, d in zip(names, run_dirs, strict=True)]
    return names


def render_comparison(run_dirs: list[Path], out: Path) -> Path:
    if len(run_dirs) < 2:
        raise KahaniError("judge compare needs at least two evaluation folders")
    loaded = [load_evaluation(d) for d in run_dirs]
    summaries, scores = [s for s, _ in loaded], [r for _, r in loaded]
    names = _names(summaries, run_dirs)
    shared = set.intersection(*({s["prompt_id"] for s in rows} for rows in scores))
    if not shared:
        raise KahaniError("the evaluations share no prompts: score them with the same --prompts")
    prompt_ids = sorted(shared)
    measures = _measures(summaries)
    per_prompt = {
        m: [[_per_prompt(rows, m).get(p) for p in prompt_ids] for rows in scores] for m in measures
    }
    win_measure = "judge:overall" if "judge:overall" in measures else (measures or [None])[0]
    pairs = list(combinations(range(len(names)), 2))
    significance = [
        {
            "measure": m,
            "a": names[i],
            "b": names[j],
            "result": paired_bootstrap(per_prompt[m][i], per_prompt[m][j]),
        }
        for m in measures
        for i, j in pairs
    ]
    html = render(
        "compare.html.j2",
        lang=html_lang(summaries[0]["language"]),
        title=f"Comparison: {' vs '.join(names)}",
        runs=[
            {"name": n, "dir": d.name, "summary": s}
            for n, d, s in zip(names, run_dirs, summaries, strict=True)
        ],
        shared=len(prompt_ids),
        unshared=[len({s["prompt_id"] for s in rows} - shared) for rows in scores],
        bars=_bars(summaries, names),
        win_measure=win_measure,
        wins=_wins(per_prompt.get(win_measure, []), names),
        significance=significance,
        table=_table(names, scores, prompt_ids, per_prompt.get(win_measure)),
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


def _wins(values: list[list[float | None]], names: list[str]) -> list[dict]:
    """For each ordered pair, the share of prompts where the row model scored higher, equal,
    lower (prompts either lacks a score for are left out)."""
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


def _table(
    names: list[str],
    scores: list[list[dict]],
    prompt_ids: list[str],
    values: list[list[float | None]] | None,
) -> dict[str, Any]:
    """Rows per prompt; the detail shows each model's completions side by side."""
    by_prompt = [defaultdict(list) for _ in names]
    for model_rows, bucket in zip(scores, by_prompt, strict=True):
        for s in sorted(model_rows, key=lambda r: r.get("sample", 0)):
            bucket[s["prompt_id"]].append(s)
    rows = []
    for k, pid in enumerate(prompt_ids):
        first = by_prompt[0][pid][0]
        row: dict[str, Any] = {"prompt_id": pid, "prompt": first["prompt"]}
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
    return {
        "page": PAGE,
        "columns": [
            {"key": "prompt_id", "label": "prompt id"},
            {"key": "prompt", "label": "prompt"},
            *({"key": f"m{m}", "label": n, "num": True} for m, n in enumerate(names)),
        ],
        "rows": rows,
        "search": ["prompt", "completions", "prompt_id"],
        "select": None,
        "range": {"key": "m0", "label": f"{names[0]} score"} if values else None,
        "detail": [
            {"key": "prompt", "label": "Prompt"},
            {"key": "completions", "label": "Completions, side by side", "kind": "cols"},
        ],
    }
