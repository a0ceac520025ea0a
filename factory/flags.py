"""Command-line options made from settings fields, so a flag's help, default and bounds are
the field's: declared once, checked the same way for flags and run files, in all three CLIs."""

from typing import Annotated, Any

import typer
from pydantic import BaseModel
from pydantic_core import PydanticUndefined


def option(model: type[BaseModel], name: str, *decls: str, **kwargs: Any) -> Any:
    """A Typer option for `model`'s field `name` (flag `--name-with-dashes` unless `decls`
    are given). Its value defaults to None, meaning "not given": the field's default applies
    after run files and stored settings are merged, and the help shows that default."""
    field = model.model_fields[name]
    default = field.get_default(call_default_factory=True)
    help_text = kwargs.pop("help", None) or field.description or ""
    if default not in (None, PydanticUndefined, {}, []) and not isinstance(default, bool):
        help_text += f" [default: {default}]"
    return typer.Option(
        *(decls or (f"--{name.replace('_', '-')}",)), help=help_text, show_default=False, **kwargs
    )


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"kahani {version('kahani')}")
        raise typer.Exit()


# `--version` of the three command lines.
Version = Annotated[
    bool | None,
    typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version."),
]


def given(**values: Any) -> dict[str, Any]:
    """The options the user typed (those not None)."""
    return {k: v for k, v in values.items() if v is not None}
