"""One-line errors for the command lines: a user's mistake is a sentence, not a traceback."""

import sys
from collections.abc import Callable


class KahaniError(Exception):
    """A problem the user can fix; the message says what and how, on one line."""


def run_cli(app: Callable[[], object]) -> None:
    """Run a Typer app, turning KahaniError into `error: ...` on stderr and exit code 2."""
    try:
        app()
    except KahaniError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
