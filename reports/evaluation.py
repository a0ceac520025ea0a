"""The evaluation report (`report.html` of a `judge score` folder). It receives what `judge`
read from the folder (the summary as a dict, the per-sample rows of scores.jsonl, the sampling
settings), so a re-render needs neither the model nor the judge, and reads no file itself."""

import re
from pathlib import Path
from typing import Any

from reports import charts
from reports.render import render, write

_SECRET = re.compile(r"api_?key|secret|password|authorization", re.I)
PAGE = 200  # table rows drawn at once; more on request, so 3,000 samples paint fast
CONTROL_EXAMPLES = 3  # per kind of damage, the ones the judge missed first


def _judgements(score: dict) -> dict[str, str]:
    """Each judgement of a panel (judge, repeat) as one line: scores, then the reason."""
    shown = {}
    for j in score.get("judgements") or []:
        scores = j.get("scores")
        text = (
            ", ".join(f"{k} {v}" for k, v in scores.items())
            if scores
            else f"no scores: {j.get('problem') or ''}"
        )
        reason = j.get("reasoning") or ""
        shown[f"{j['judge']} #{j['repeat'] + 1}"] = f"{text}. {reason}".strip()
    return shown


def _row(score: dict) -> dict[str, Any]:
    judge = score.get("judge") or {}
    scores = judge.get("scores")
    return {
        "id": score["id"],
        "prompt_id": score["prompt_id"],
        "prompt": score["prompt"],
        "completion": score["completion"],
        "overall": scores.get("overall") if scores else None,
        "words": (score.get("metrics") or {}).get("length_words"),
        "finish": score.get("finish_reason"),
        "scores": scores or {},
        "reasoning": judge.get("reasoning") or judge.get("problem") or judge.get("raw"),
        "metrics": score.get("metrics") or {},
        "reference": score.get("reference"),
        "judgements": _judgements(score),
    }


def sample_table(scores: list[dict]) -> dict[str, Any]:
    """Settings and rows for the page's sample table (reports/static/table.js)."""
    return {
        "page": PAGE,
        "columns": [
            {"key": "id", "label": "sample"},
            {"key": "prompt", "label": "prompt"},
            {"key": "completion", "label": "completion"},
            {"key": "overall", "label": "overall", "num": True},
            {"key": "words", "label": "words", "num": True},
            {"key": "finish", "label": "finish"},
        ],
        "rows": [_row(s) for s in scores],
        "search": ["prompt", "completion", "reasoning", "id"],
        "select": {"key": "prompt_id", "label": "prompts"},
        "range": {"key": "overall", "label": "overall score"},
        "detail": [
            {"key": "id", "label": "Sample"},
            {"key": "prompt", "label": "Prompt"},
            {"key": "completion", "label": "Completion"},
            {"key": "reference", "label": "Reference"},
            {"key": "scores", "label": "Judge scores", "kind": "kv"},
            {"key": "reasoning", "label": "Judge's reasoning"},
            {"key": "judgements", "label": "Each judgement (panel)", "kind": "cols"},
            {"key": "metrics", "label": "Metrics", "kind": "kv"},
        ],
    }


def _codemix(summary: dict, scores: list[dict]) -> dict[str, Any] | None:
    """The Hinglish panel: CMI and switch-rate (I-index) distributions, inconsistent spellings."""
    metrics = summary.get("metrics", {})
    if "cmi" not in metrics:
        return None
    values = {name: [(s.get("metrics") or {}).get(name) for s in scores] for name in metrics}
    consistency = metrics.get("transliteration_consistency", {})
    return {
        "charts": [
            charts.histogram(values["cmi"], "CMI per sample", 0, 50, 25, "CMI (0-50)"),
            charts.histogram(
                values.get("i_index", []), "switch rate (I-index)", 0, 1, 20, "I-index"
            ),
        ],
        "groups": (consistency.get("details") or {}).get("top_inconsistent_groups", []),
        "consistency": consistency,
    }


def _dimension_charts(summary: dict, scores: list[dict]) -> list:
    judge = summary.get("judge")
    if not judge:
        return []
    panel = (summary.get("panel") or {}).get("judges") or []
    bars = charts.interval_bars(
        {
            d: [
                (_judge_label(judge), e["mean"], e["low"], e["high"]),
                *(
                    (f"{j['provider']}:{j['model']}", *_bounds(j["dimensions"].get(d)))
                    for j in (panel if len(panel) > 1 else [])
                ),
            ]
            for d, e in judge["dimensions"].items()
        },
        "judge dimensions, mean with 95% interval",
    )
    hists = [
        charts.histogram(
            [((s.get("judge") or {}).get("scores") or {}).get(d) for s in scores],
            d,
            0.5,
            10.5,
            10,
            "score (1-10)",
        )
        for d in judge["dimensions"]
    ]
    return [bars, *hists]


def _judge_name(judge: dict) -> str:
    judges = judge.get("judges") or []
    if len(judges) > 1:
        return f"mean of {', '.join(judges)}"
    return f"{judge['provider']}:{judge['model']}"


def _bounds(entry: dict | None) -> tuple:
    entry = entry or {}
    return entry.get("mean"), entry.get("low"), entry.get("high")


def _judge_label(judge: dict) -> str:
    """The judge as shown: provider:model, or "panel mean" for the mean of several."""
    return "panel mean" if len(judge.get("judges") or []) > 1 else judge["model"]


def control_examples(controls: list[dict]) -> dict[str, list[dict]]:
    """Per kind of damage, a few damaged copies beside their originals: first those the
    judge did not score below the original, so a reader sees what it missed."""
    by_kind: dict[str, list[dict]] = {}
    for row in controls:
        by_kind.setdefault(row["kind"], []).append(row)

    def missed(row: dict) -> bool:
        a, b = row.get("original_overall"), row.get("damaged_overall")
        return a is None or b is None or a <= b

    return {
        kind: sorted(rows, key=lambda r: not missed(r))[:CONTROL_EXAMPLES]
        for kind, rows in by_kind.items()
    }


def run_settings(summary: dict, sampling: dict) -> dict[str, Any]:
    """What made the run, for the page: summary counts and the sampling settings. Keys that
    look like credentials are dropped, should a later version ever record one."""
    judge = summary.get("judge")
    settings = {
        "model": summary["model"],
        "language": summary["language"],
        "prompts": summary["prompts"],
        "samples per prompt": summary["samples_per_prompt"],
        "completions": summary["completions"],
        "judge": _judge_name(judge) if judge else summary.get("judge_note"),
        **(summary.get("settings") or {}),
        **sampling,
    }
    return {k: v for k, v in settings.items() if not _SECRET.search(k)}


def render_evaluation(
    summary: dict[str, Any],
    scores: list[dict],
    sampling: dict[str, Any],
    lang: str,
    out: Path,
    controls: list[dict] | None = None,
) -> Path:
    """Write the report of one evaluation to `out`; `controls` are the controls.jsonl rows
    (damaged copies beside their originals)."""
    metric_values = {
        name: [(s.get("metrics") or {}).get(name) for s in scores]
        for name, entry in summary.get("metrics", {}).items()
        if not entry.get("skipped") and name not in {"cmi", "i_index", "m_index"}
    }
    html = render(
        "evaluation.html.j2",
        lang=lang,
        title=f"Evaluation of {summary['model']}",
        summary=summary,
        run_settings=run_settings(summary, sampling),
        dimension_charts=_dimension_charts(summary, scores),
        metric_charts=[charts.histogram(v, name) for name, v in metric_values.items()],
        codemix=_codemix(summary, scores),
        judge_name=_judge_name(summary["judge"]) if summary.get("judge") else None,
        control_examples=control_examples(controls or []),
        table=sample_table(scores),
    )
    return write(out, html)
