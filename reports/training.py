"""The training report (`trainer report RUN [RUN...]`) and the tokenizer comparison
(`trainer tokenizer --compare`). Both receive plain data (trainer/runinfo.py reads the run
folders) and render it with the stack of the other reports: autoescaped templates, inline SVG,
table rows as inert JSON shown with textContent."""

from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from reports import charts
from reports.render import render, write

# Curves drawn when some run logged them: (metric, chart title). Training rows carry the
# step's loss and the task's own measures; evaluation rows carry val_*.
CURVES = [
    ("loss", "training loss"),
    ("val_loss", "validation loss"),
    ("val_bpb", "validation bits per byte"),
    ("accuracy", "training accuracy"),
    ("val_accuracy", "held-out accuracy"),
    ("val_macro_f1", "held-out macro-F1"),
    ("reward_accuracy", "reward accuracy"),
    ("reward_margin", "reward margin"),
    ("val_reward_accuracy", "held-out reward accuracy"),
    ("val_reward_margin", "held-out reward margin"),
    ("lr", "learning rate"),
    ("tokens_per_s", "tokens per second"),
    ("mfu", "model flops utilisation"),
]
PAGE = 200


def lines(series: dict[str, list[tuple[float, float]]], title: str, xlabel: str) -> Markup:
    """Several polylines on shared axes, one colour per series, with a legend; the y axis spans
    the values (losses start far above where they end, so 0 is not forced in)."""
    W, H = charts.W, charts.H + 16 * ((len(series) + 1) // 2)
    top = charts.PAD_T + 16 * ((len(series) + 1) // 2)
    points = [p for pts in series.values() for p in pts]
    if len(points) < 2:
        return Markup(
            f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" '
            f'width="{W}" height="{H}" role="img" aria-label="{escape(title)}">'
            f'<text x="{charts.PAD_L}" y="13" class="ct">{escape(title)}</text>'
            f'<text x="{W / 2}" y="{H / 2}" class="tk">too few points</text></svg>'
        )
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    xlo, xhi, ylo, yhi = min(xs), max(xs), min(ys), max(ys)
    xhi = xhi if xhi > xlo else xlo + 1
    yhi = yhi if yhi > ylo else ylo + (abs(ylo) or 1)
    x0, x1, y0, y1 = charts.PAD_L, W - charts.PAD_R, H - charts.PAD_B, top

    def fx(v: float) -> float:
        return x0 + (x1 - x0) * (v - xlo) / (xhi - xlo)

    def fy(v: float) -> float:
        return y0 - (y0 - y1) * (v - ylo) / (yhi - ylo)

    body = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" '
        f'width="{W}" height="{H}" role="img" aria-label="{escape(title)}">',
        f'<text x="{x0}" y="13" class="ct">{escape(title)}</text>',
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" class="ax"/>',
        f'<line x1="{x0}" y1="{y1}" x2="{x0}" y2="{y0}" class="ax"/>',
        f'<text x="{x0}" y="{y0 + 13}" class="tk">{charts._fmt(xlo)}</text>',
        f'<text x="{x1}" y="{y0 + 13}" class="tk" text-anchor="end">{charts._fmt(xhi)}</text>',
        f'<text x="{(x0 + x1) / 2}" y="{H - 4}" class="tk" text-anchor="middle">'
        f"{escape(xlabel)}</text>",
        f'<text x="{x0 - 4}" y="{y1 + 8}" class="tk" text-anchor="end">{charts._fmt(yhi)}</text>',
        f'<text x="{x0 - 4}" y="{y0}" class="tk" text-anchor="end">{charts._fmt(ylo)}</text>',
    ]
    for i, (name, pts) in enumerate(series.items()):
        color = charts.COLORS[i % len(charts.COLORS)]
        lx, ly = x0 + (i % 2) * (x1 - x0) / 2, 20 + 16 * (i // 2)
        body.append(
            f'<g class="legend"><rect x="{lx}" y="{ly}" width="10" height="10" fill="{color}"/>'
            f'<text x="{lx + 14}" y="{ly + 9}" class="tk">{escape(name)}</text></g>'
        )
        if not pts:
            continue
        if len(pts) == 1:
            ((px, py),) = pts
            body.append(f'<circle cx="{fx(px):.1f}" cy="{fy(py):.1f}" r="3" fill="{color}"/>')
            continue
        coords = " ".join(f"{fx(px):.1f},{fy(py):.1f}" for px, py in pts)
        body.append(
            f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="1.5">'
            f"<title>{escape(name)}</title></polyline>"
        )
    return Markup("".join(body) + "</svg>")


def _curves(runs: list[dict[str, Any]]) -> list[Markup]:
    out = []
    for metric, title in CURVES:
        series = {
            r["name"]: [(row["step"], row[metric]) for row in r["metrics"] if metric in row]
            for r in runs
        }
        if any(series.values()):
            out.append(lines(series, title, "step"))
    return out


def _settings(run: dict[str, Any]) -> dict[str, Any]:
    spec = run["spec"]
    flat = {
        "kind": spec["kind"],
        "data": spec["data"],
        "init": spec.get("init"),
        "preset": spec["preset"],
        "parameters": f"{run['parameters']['total']:,}",
        "trainable": f"{run['parameters']['trainable']:,}",
        "finished": "yes" if run["finished"] else "no (no hf/ yet)",
    }
    flat.update({f"model.{k}": v for k, v in spec["model"].items()})
    flat.update({f"train.{k}": v for k, v in spec["train"].items()})
    for extra in ("classify", "dpo"):
        if spec.get(extra):
            flat.update({f"{extra}.{k}": v for k, v in spec[extra].items()})
    return flat


def _page_lang(texts: list[str]) -> str:
    """The page language from the script most of the sample text is in."""
    counts = {"hi": 0, "bn": 0, "en": 0}
    for text in texts:
        for ch in text[:400]:
            if "\u0900" <= ch <= "\u097f":
                counts["hi"] += 1
            elif "\u0980" <= ch <= "\u09ff":
                counts["bn"] += 1
            elif ch.isalpha():
                counts["en"] += 1
    return max(counts, key=lambda k: counts[k])


def _last(run: dict[str, Any], metric: str) -> float | None:
    values = [row[metric] for row in run["metrics"] if metric in row]
    return values[-1] if values else None


def render_training(data: dict[str, Any], out: Path) -> Path:
    """One page: settings and parameter counts per run, curves overlaid, the completions each
    checkpoint wrote, a sweep's ranked trials, a classifier's confusion matrix."""
    runs = data["runs"]
    samples = [
        {"run": r["name"], "step": s["step"], "prompt": s["prompt"], "completion": s["completion"]}
        for r in runs
        for s in r["samples"]
    ]
    table = {
        "page": PAGE,
        "columns": [
            {"key": "run", "label": "run"},
            {"key": "step", "label": "step", "num": True},
            {"key": "prompt", "label": "prompt"},
            {"key": "completion", "label": "completion"},
        ],
        "rows": samples,
        "search": ["prompt", "completion", "run"],
        "select": {"key": "run", "label": "runs"},
        "range": {"key": "step", "label": "step"},
        "detail": [
            {"key": "run", "label": "Run"},
            {"key": "step", "label": "Checkpoint step"},
            {"key": "prompt", "label": "Prompt"},
            {"key": "completion", "label": "Completion"},
        ],
    }
    summary = [
        {
            "name": r["name"],
            "kind": r["spec"]["kind"],
            "step": max((row["step"] for row in r["metrics"]), default=0),
            "steps": r["spec"]["train"]["steps"],
            "loss": _last(r, "loss"),
            "val_loss": _last(r, "val_loss"),
            "val_bpb": _last(r, "val_bpb"),
            "parameters": r["parameters"],
        }
        for r in runs
    ]
    title = f"Training of {runs[0]['name']}" if len(runs) == 1 else f"Training of {len(runs)} runs"
    html = render(
        "training.html.j2",
        lang=_page_lang([s["completion"] for s in samples]),
        title=title,
        summary=summary,
        settings={r["name"]: _settings(r) for r in runs},
        curves=_curves(runs),
        sweeps=data.get("sweeps", []),
        classifications=[(r["name"], r["classification"]) for r in runs if r["classification"]],
        table=table,
    )
    return write(out, html)


def render_tokenizers(table: list[dict[str, Any]], out: Path) -> Path:
    """The tokenizer comparison: the numbers as a table, and one grouped bar chart per
    measure (a group per language, a bar per tokenizer)."""
    measures = [
        ("fertility", "tokens per word (lower is better)"),
        ("bytes_per_token", "bytes per token (higher is better)"),
        ("vocab_used", "share of the vocabulary used"),
    ]
    bar_charts = []
    for key, title in measures:
        groups: dict[str, list[tuple[str, float | None, float | None, float | None]]] = {}
        for row in table:
            value = float(row[key])
            groups.setdefault(row["language"], []).append((row["tokenizer"], value, value, value))
        top = max(float(row[key]) for row in table) * 1.1 or 1.0
        bar_charts.append(charts.interval_bars(groups, title, 0.0, top))
    html = render(
        "tokenizers.html.j2",
        lang=_page_lang([row["language"] for row in table]),
        title="Tokenizer comparison",
        rows=table,
        charts=bar_charts,
    )
    return write(out, html)
