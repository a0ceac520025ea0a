"""The leaderboard page of pairwise judging (`leaderboard.html` of `judge compare-pairwise`).
It receives the pairwise summary (`pairwise.json` as a dict) and the judged pairs
(`pairs.jsonl` rows) and draws them: ratings with intervals, the win-rate matrix, the
length-controlled win rates, position consistency, parse failures, the controls with the
pairs the judge got wrong, and every judged pair with both verdicts."""

from pathlib import Path
from typing import Any

from reports import charts
from reports.render import render, write

PAGE = 200
MISSED_EXAMPLES = 3  # control pairs shown per kind of damage where the judge missed it


def _outcome(pair: dict) -> str:
    """What the two verdicts add up to, in words."""
    if pair["score"] is None:
        return "missing"
    if pair["consistent"] is False:
        return "tie (order-inconsistent)"
    return {1.0: f"{pair['first']} wins", 0.0: f"{pair['second']} wins"}.get(pair["score"], "tie")


def _verdict(verdict: dict, shown_as_a: str, shown_as_b: str) -> str:
    """One verdict as the judge gave it, with the positions named."""
    winner = verdict.get("winner")
    if winner in ("A", "B"):
        said = f"{winner} ({shown_as_a if winner == 'A' else shown_as_b})"
    else:
        said = winner or "no verdict"
    head = f"A = {shown_as_a}, B = {shown_as_b}: {said}"
    detail = verdict.get("reason") or verdict.get("problem") or ""
    return f"{head}\n{detail}".strip()


def _row(pair: dict) -> dict[str, Any]:
    first, second = pair["first"], pair["second"]
    return {
        "type": pair["type"],
        "judge": pair.get("judge", ""),
        "matchup": f"{first} vs {second}",
        "prompt_id": pair["prompt_id"],
        "sample": pair["sample"],
        "outcome": _outcome(pair),
        "score": pair["score"],
        "prompt": pair["prompt"],
        "texts": {first: pair["first_text"], second: pair["second_text"]},  # names differ
        "verdicts": {
            "first order": _verdict(pair["forward"], first, second),
            "swapped order": _verdict(pair["backward"], second, first),
        },
    }


def pair_table(pairs: list[dict]) -> dict[str, Any]:
    """Settings and rows for the drill-down table (reports/static/table.js)."""
    return {
        "page": PAGE,
        "columns": [
            {"key": "type", "label": "type"},
            {"key": "matchup", "label": "pair"},
            {"key": "judge", "label": "judge"},
            {"key": "prompt_id", "label": "prompt"},
            {"key": "sample", "label": "sample", "num": True},
            {"key": "outcome", "label": "outcome"},
            {"key": "score", "label": "score of the first", "num": True},
        ],
        "rows": [_row(p) for p in pairs],
        "search": ["prompt", "texts", "verdicts", "matchup", "outcome", "prompt_id"],
        "select": {"key": "matchup", "label": "pairs"},
        "range": None,
        "detail": [
            {"key": "matchup", "label": "Pair"},
            {"key": "prompt", "label": "Prompt"},
            {"key": "texts", "label": "Texts, side by side", "kind": "cols"},
            {"key": "verdicts", "label": "The judge's verdicts, in both orders", "kind": "cols"},
            {"key": "outcome", "label": "Outcome"},
        ],
    }


def _missed(pairs: list[dict]) -> dict[str, list[dict]]:
    """Per kind of damage, control pairs where the original did not win in both orders."""
    missed: dict[str, list[dict]] = {}
    for pair in pairs:
        if pair["type"] == "control" and pair["score"] != 1.0:
            rows = missed.setdefault(pair["second"], [])
            if len(rows) < MISSED_EXAMPLES:
                rows.append(_row(pair))
    return missed


def _matrix(summary: dict, order: list[str]) -> list[dict]:
    """Rows of the win-rate matrix: each model's win rate over each other, with a shade."""
    rows = []
    for a in order:
        cells = []
        for b in order:
            w = summary["win_rates"].get(a, {}).get(b)
            if w is None:
                cells.append(None)
                continue
            mean = w["rate"]["mean"]
            cells.append(
                {
                    "rate": w["rate"],
                    "wins": w["wins"],
                    "ties": w["ties"],
                    "losses": w["losses"],
                    # green above one half, red below: hue 0 (red) to 120 (green)
                    "shade": None if mean is None else f"hsl({round(120 * mean)}, 55%, 88%)",
                }
            )
        rows.append({"system": a, "cells": cells})
    return rows


def render_leaderboard(summary: dict, pairs: list[dict], lang: str, out: Path) -> Path:
    """Write the leaderboard of one pairwise judging to `out`."""
    ratings = summary["ratings"]
    order = [r["system"] for r in ratings] or summary["systems"]
    chart = None
    if ratings:
        lo = min(r["low"] for r in ratings)
        hi = max(r["high"] for r in ratings)
        margin = max(25.0, (hi - lo) * 0.08)
        chart = charts.interval_dots(
            [(r["system"], r["rating"], r["low"], r["high"]) for r in ratings],
            "Bradley-Terry rating, 95% interval",
            lo - margin,
            hi + margin,
            reference=1000.0,
        )
    length_controlled = [
        {"a": a, "b": b, **summary["length_controlled"][a][b]}
        for i, a in enumerate(order)
        for b in order[i + 1 :]
        if b in summary["length_controlled"].get(a, {})
    ]
    html = render(
        "leaderboard.html.j2",
        lang=lang,
        title=f"Leaderboard: {', '.join(order)}",
        summary=summary,
        order=order,
        chart=chart,
        matrix=_matrix(summary, order),
        length_controlled=length_controlled,
        missed=_missed(pairs),
        table=pair_table(pairs),
    )
    return write(out, html)
