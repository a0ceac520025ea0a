"""One-line errors for the command lines: a user's mistake is a sentence, not a traceback."""

import sys
from collections.abc import Callable

from pydantic import ValidationError


class KahaniError(Exception):
    """A problem the user can fix; the message says what and how, on one line."""


def run_cli(app: Callable[[], object]) -> None:
    """Run a Typer app, turning KahaniError into `error: ...` on stderr and exit code 2."""
    try:
        app()
    except KahaniError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def first_problem(err: ValidationError) -> str:
    """`field.path: message` of a pydantic error's first problem, for a one-line error."""
    problem = err.errors()[0]
    where = ".".join(str(part) for part in problem["loc"])
    return f"{where}: {problem['msg']}"
