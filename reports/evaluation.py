"""The evaluation report (`report.html` in a `judge score` folder), read from the files that
`judge score` writes (summary.json, scores.jsonl, controls.jsonl), so a re-render needs neither
the model nor the judge."""

import json
import re
from pathlib import Path
from typing import Any

from factory.errors import KahaniError
from reports import charts
from reports.render import html_lang, render, write

_SECRET = re.compile(r"api_?key|secret|password|authorization", re.I)
PAGE = 200  # table rows drawn at once; more on request, so 3,000 samples paint fast


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def load_evaluation(run_dir: Path) -> tuple[dict, list[dict]]:
    """summary.json and the per-sample rows (scores.jsonl) of an evaluation folder."""
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise KahaniError(f"{run_dir} is not an evaluation folder: it has no summary.json")
    return json.loads(summary_path.read_text(encoding="utf-8")), read_jsonl(
        run_dir / "scores.jsonl"
    )


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
    bars = charts.interval_bars(
        {
            d: [(summary["model"], e["mean"], e["low"], e["high"])]
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
        "judge": f"{judge['provider']}:{judge['model']}" if judge else summary.get("judge_note"),
        **summary.get("settings", {}),
        **sampling,
    }
    return {k: v for k, v in settings.items() if not _SECRET.search(k)}


def render_evaluation(run_dir: Path, out: Path | None = None) -> Path:
    """Render `run_dir/report.html` (or `out`) from the evaluation folder's files."""
    summary, scores = load_evaluation(run_dir)
    metric_values = {
        name: [(s.get("metrics") or {}).get(name) for s in scores]
        for name, entry in summary.get("metrics", {}).items()
        if "skipped" not in entry and name not in {"cmi", "i_index", "m_index"}
    }
    html = render(
        "evaluation.html.j2",
        lang=html_lang(summary["language"]),
        title=f"Evaluation of {summary['model']}",
        summary=summary,
        run_settings=run_settings(summary, _read_json(run_dir / "sampling.json")),
        dimension_charts=_dimension_charts(summary, scores),
        metric_charts=[charts.histogram(v, name) for name, v in metric_values.items()],
        codemix=_codemix(summary, scores),
        table=sample_table(scores),
    )
    return write(out or run_dir / "report.html", html)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
