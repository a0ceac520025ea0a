"""One self-contained HTML file per report: Jinja2 with autoescape, CSS/JS inlined, data as JSON.

A report is mailed around and opened from `file://` without network, so nothing is fetched:
the stylesheet and script ship as package files and are pasted in at render time. Text that a
model or a user wrote reaches the page only escaped: HTML through autoescape, table data through
`json_script`, which the page reads with `JSON.parse` and shows with `textContent`.
"""

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

# `<`, `>` and `&` as \u escapes: `</script>` or `<!--` inside a story cannot end the data block.
_JSON_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


def json_script(data: Any, element_id: str) -> Markup:
    """Data for the page's script, inert: a JSON block no text inside it can break out of."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":")).translate(_JSON_ESCAPES)
    return Markup('<script type="application/json" id="{}">{}</script>').format(
        element_id, Markup(text)
    )


def _static(name: str) -> Markup:
    return Markup(files("reports").joinpath("static", name).read_text(encoding="utf-8"))


_ENV = Environment(
    loader=PackageLoader("reports", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.globals.update(static=_static, json_script=json_script)
_ENV.filters["num"] = lambda v, digits=3: "–" if v is None else f"{v:,.{digits}f}"
_ENV.filters["pct"] = lambda v: "–" if v is None else f"{v:.1%}"


def render(template: str, **context: Any) -> str:
    return _ENV.get_template(template).render(**context)


def write(path: Path, html: str) -> Path:
    """Write via a temporary name so an open browser tab never sees half a report."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(path)
    except OSError as err:
        raise ReportError(f"cannot write {path}: {err.strerror or err}") from None
    return path


class ReportError(Exception):
    """A report could not be written; the CLIs show it as a one-line error."""
