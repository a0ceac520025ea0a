"""Prompt templates: Jinja2 files under `templates/<kind>/<language>.j2`, or a user's own file.

A template may open with a YAML header inside a Jinja comment, `{#--- ... ---#}`, that says
which word list feeds each variable, which variables form the unique key, the JSON shape
the prompt asks for, and an example answer (used to estimate output tokens). Without a
header, a variable `noun` is fed by `nouns.txt` (or `noun.txt`) and every list is unique.
"""

from pathlib import Path

import jinja2
import jinja2.meta
import yaml
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, ValidationError

from factory.errors import KahaniError, first_problem

_HEADER_START, _HEADER_END = "{#---", "---#}"

# Sandboxed: a template is a file a user may have downloaded; it must not reach Python.
# StrictUndefined: a misspelled variable fails loudly instead of rendering as "".
_ENV = SandboxedEnvironment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
)


class TemplateHeader(BaseModel):
    """What a template declares about itself (all optional for a user's own template)."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    json_shape: str | None = None  # the JSON the prompt asks for, e.g. {"story": "..."}
    json_key: str | None = None  # the key that holds the answer in that JSON
    variables: dict[str, str] = {}  # variable -> word list name (file stem)
    unique: list[str] | None = None  # variables forming the unique key; default: all lists
    defaults: dict[str, str | int] = {}  # constants, overridable with --var
    system: str | None = None  # system message sent before the rendered prompt
    forbidden: list[
        str
    ] = []  # words the prompt forbids; `factory clean` rejects answers using them
    example_output: str | None = None  # a typical answer, for output-token estimates
    # Slots `--diversify` fills (variable -> word list), drawn freely for each prompt; without
    # it they are undefined, so the body guards each with `{% if name is defined %}`.
    diversify: dict[str, str] = {}
    # Rubrics (`factory clean --judge --rubric`): the score keys the answer must give, and
    # their range; `json_key` names the one compared with --min-score.
    dimensions: list[str] = []
    scale: tuple[float, float] | None = None


class PromptTemplate:
    """A parsed template: its header, the variables its body uses, and a render function."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            source = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KahaniError(f"template {path} does not exist") from None
        except UnicodeDecodeError:
            raise KahaniError(f"template {path} is not UTF-8") from None
        self.header = _parse_header(path, source)
        try:
            ast = _ENV.parse(source)
            self._template = _ENV.from_string(ast)
        except jinja2.TemplateSyntaxError as err:
            raise KahaniError(
                f"{path}:{err.lineno}: template syntax error: {err.message}"
            ) from None
        self.used_variables: set[str] = jinja2.meta.find_undeclared_variables(ast)

    @property
    def name(self) -> str:
        return f"{self.path.parent.name}/{self.path.stem}"

    def render(self, variables: dict[str, str | int]) -> str:
        try:
            return self._template.render(variables).strip()
        except jinja2.UndefinedError as err:
            raise KahaniError(f"{self.path}: {err.message}") from None
        except jinja2.TemplateError as err:
            raise KahaniError(f"{self.path}: cannot render: {err}") from None


def _parse_header(path: Path, source: str) -> TemplateHeader:
    if not source.startswith(_HEADER_START):
        return TemplateHeader()
    end = source.find(_HEADER_END)
    if end < 0:
        raise KahaniError(f"{path}:1: header opened with {_HEADER_START} but never closed")
    try:
        data = yaml.safe_load(source[len(_HEADER_START) : end]) or {}
        return TemplateHeader.model_validate(data)
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", 0) + 1
        raise KahaniError(f"{path}:{line}: header is not valid YAML") from None
    except ValidationError as err:
        raise KahaniError(f"{path}: header field {first_problem(err)}") from None


def template_path(templates_dir: Path, kind: str, language: str) -> Path:
    """The shipped template for a kind and language."""
    return templates_dir / kind / f"{language}.j2"


def shown(path: Path) -> str:
    """A shipped template as `translate/hindi.j2`, wherever kahani is installed; a user's own
    as given."""
    from factory.paths import TEMPLATES_DIR

    resolved, shipped = Path(path).resolve(), TEMPLATES_DIR.resolve()
    return str(resolved.relative_to(shipped)) if resolved.is_relative_to(shipped) else str(path)


def find_template(path: Path) -> Path:
    """A template file as given, else the shipped one of that name (`translate/hindi.j2`)."""
    from factory.paths import TEMPLATES_DIR

    path = Path(path)
    if path.is_file():
        return path
    shipped = TEMPLATES_DIR / path
    if not path.is_absolute() and shipped.is_file():
        return shipped
    names = sorted(str(p.relative_to(TEMPLATES_DIR)) for p in TEMPLATES_DIR.glob("*/*.j2"))
    raise KahaniError(
        f"template {path} does not exist (neither a file nor a shipped template: "
        f"{', '.join(names)})"
    )
