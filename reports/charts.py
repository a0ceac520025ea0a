"""Charts as inline SVG strings: no chart library to bundle, nothing to run in the page, and
they print and scale. Every label goes through `escape`, since labels can be model text."""

from collections.abc import Sequence

from markupsafe import Markup, escape

W, H = 420, 180  # drawing size of one chart
PAD_L, PAD_R, PAD_T, PAD_B = 44, 12, 20, 32
COLORS = ("#3b6fb6", "#d9822b", "#2e9e6a", "#b8456b", "#7a5bb5", "#8c8c8c")


def _svg(body: list[str], title: str, width: int = W, height: int = H) -> Markup:
    head = (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">'
        f'<text x="{PAD_L}" y="13" class="ct">{escape(title)}</text>'
    )
    return Markup(head + "".join(body) + "</svg>")


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def _axes(lo: float, hi: float, ymax: float, xlabel: str) -> list[str]:
    x0, y0, x1 = PAD_L, H - PAD_B, W - PAD_R
    return [
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" class="ax"/>',
        f'<line x1="{x0}" y1="{PAD_T}" x2="{x0}" y2="{y0}" class="ax"/>',
        f'<text x="{x0}" y="{y0 + 13}" class="tk">{_fmt(lo)}</text>',
        f'<text x="{x1}" y="{y0 + 13}" class="tk" text-anchor="end">{_fmt(hi)}</text>',
        f'<text x="{(x0 + x1) / 2}" y="{H - 4}" class="tk" text-anchor="middle">'
        f"{escape(xlabel)}</text>",
        f'<text x="{x0 - 4}" y="{PAD_T + 8}" class="tk" text-anchor="end">{_fmt(ymax)}</text>',
        f'<text x="{x0 - 4}" y="{y0}" class="tk" text-anchor="end">0</text>',
    ]


def histogram(
    values: Sequence[float | None],
    title: str,
    lo: float | None = None,
    hi: float | None = None,
    bins: int = 20,
    xlabel: str = "",
) -> Markup:
    """Counts of the values in `bins` equal bins over [lo, hi] (default: their range); None
    values are left out and counted in the title, never drawn as 0."""
    present = [float(v) for v in values if v is not None]
    missing = len(values) - len(present)
    if missing:
        title = f"{title} ({missing:,} missing)"
    if not present:
        return _svg([f'<text x="{W / 2}" y="{H / 2}" class="tk">no values</text>'], title)
    lo = min(present) if lo is None else lo
    hi = max(present) if hi is None else hi
    if hi <= lo:
        hi = lo + 1
    counts = [0] * bins
    for v in present:
        counts[min(bins - 1, max(0, int((v - lo) / (hi - lo) * bins)))] += 1
    top = max(counts)
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    bar_w = plot_w / bins
    body = _axes(lo, hi, top, xlabel)
    for i, n in enumerate(counts):
        if not n:
            continue
        h = plot_h * n / top
        a, b = lo + (hi - lo) * i / bins, lo + (hi - lo) * (i + 1) / bins
        body.append(
            f'<rect x="{PAD_L + i * bar_w + 0.5:.1f}" y="{H - PAD_B - h:.1f}" '
            f'width="{max(bar_w - 1, 0.5):.1f}" height="{h:.1f}" fill="{COLORS[0]}">'
            f"<title>{_fmt(a)}–{_fmt(b)}: {n:,}</title></rect>"
        )
    return _svg(body, title)


def interval_bars(
    groups: dict[str, list[tuple[str, float | None, float | None, float | None]]],
    title: str,
    lo: float = 0.0,
    hi: float = 10.0,
) -> Markup:
    """Horizontal bars, one per (series, mean, low, high) in each group, with the 95% interval
    as a whisker: overlapping whiskers warn that a gap may be noise."""
    series = sorted({s for rows in groups.values() for s, *_ in rows})
    color = {s: COLORS[i % len(COLORS)] for i, s in enumerate(series)}
    row_h, label_w = 14, 150
    n_rows = sum(len(rows) for rows in groups.values()) + len(groups)
    height = PAD_T + n_rows * row_h + PAD_B
    width = 560
    x0, x1 = label_w, width - PAD_R

    def x(v: float) -> float:
        return x0 + (x1 - x0) * (min(max(v, lo), hi) - lo) / (hi - lo)

    body, y = [], PAD_T
    for group, rows in groups.items():
        body.append(f'<text x="4" y="{y + 11}" class="gl">{escape(group)}</text>')
        y += row_h
        for name, mean, low, high in rows:
            body.append(f'<text x="14" y="{y + 10}" class="tk">{escape(name)}</text>')
            if mean is not None:
                tip = f"{name}: {mean:.3f} [{low:.3f}, {high:.3f}]"
                body.append(
                    f'<rect x="{x0}" y="{y + 2}" width="{x(mean) - x0:.1f}" height="{row_h - 4}" '
                    f'fill="{color[name]}" opacity="0.8"><title>{escape(tip)}</title></rect>'
                    f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{y + row_h / 2}" '
                    f'y2="{y + row_h / 2}" class="wh"/>'
                )
            y += row_h
    body += [
        f'<line x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" class="ax"/>',
        f'<text x="{x0}" y="{y + 13}" class="tk">{_fmt(lo)}</text>',
        f'<text x="{x1}" y="{y + 13}" class="tk" text-anchor="end">{_fmt(hi)}</text>',
    ]
    return _svg(body, title, width, height)


def line_chart(points: Sequence[tuple[float, float]], title: str, xlabel: str) -> Markup:
    """A polyline of (x, y) points, for running totals over time."""
    if len(points) < 2:
        return _svg([f'<text x="{W / 2}" y="{H / 2}" class="tk">too few points</text>'], title)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    xlo, xhi, ytop = min(xs), max(xs), max(ys) or 1
    xhi = xhi if xhi > xlo else xlo + 1
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    coords = " ".join(
        f"{PAD_L + plot_w * (px - xlo) / (xhi - xlo):.1f},{H - PAD_B - plot_h * py / ytop:.1f}"
        for px, py in points
    )
    body = [*_axes(xlo, xhi, ytop, xlabel)]
    body.append(f'<polyline points="{coords}" fill="none" stroke="{COLORS[0]}" stroke-width="2"/>')
    return _svg(body, title)


def interval_dots(
    rows: Sequence[tuple[str, float, float, float]],
    title: str,
    lo: float,
    hi: float,
    reference: float | None = None,
) -> Markup:
    """One row per (label, value, low, high): a dot at the value on a whisker from low to
    high, on a shared axis from lo to hi, with a dashed line at `reference`. For ratings,
    whose zero means nothing: a bar from the axis start would draw a difference that is
    not there. Whiskers that do not overlap say the order is not noise."""
    row_h, label_w, width = 20, 170, 560
    height = PAD_T + len(rows) * row_h + PAD_B
    x0, x1 = label_w, width - PAD_R
    if hi <= lo:
        hi = lo + 1

    def x(v: float) -> float:
        return x0 + (x1 - x0) * (min(max(v, lo), hi) - lo) / (hi - lo)

    y_end = PAD_T + len(rows) * row_h
    body = []
    if reference is not None and lo <= reference <= hi:
        body.append(
            f'<line x1="{x(reference):.1f}" x2="{x(reference):.1f}" y1="{PAD_T}" y2="{y_end}" '
            'class="ax" stroke-dasharray="3,3"/>'
        )
    for i, (label, value, low, high) in enumerate(rows):
        y = PAD_T + i * row_h + row_h / 2
        color = COLORS[i % len(COLORS)]
        tip = f"{label}: {value:.1f} [{low:.1f}, {high:.1f}]"
        body.append(
            f'<text x="4" y="{y + 4}" class="tk">{escape(label)}</text>'
            f'<rect x="{x(low):.1f}" y="{y - 2}" width="{max(x(high) - x(low), 1):.1f}" '
            f'height="4" fill="{color}" opacity="0.45"/>'
            f'<circle cx="{x(value):.1f}" cy="{y}" r="5" fill="{color}">'
            f"<title>{escape(tip)}</title></circle>"
        )
    body += [
        f'<line x1="{x0}" y1="{y_end}" x2="{x1}" y2="{y_end}" class="ax"/>',
        f'<text x="{x0}" y="{y_end + 13}" class="tk">{_fmt(lo)}</text>',
        f'<text x="{x1}" y="{y_end + 13}" class="tk" text-anchor="end">{_fmt(hi)}</text>',
    ]
    return _svg(body, title, width, height)
