"""One error boundary for the three command lines: a problem the user can fix is one sentence
on stderr and exit code 2, an interrupt is exit code 130, and only a bug shows a traceback.

`KAHANI_DEBUG=1` shows the full traceback of every error, for reporting one.
"""

import errno
import os
import sys
import traceback
from collections.abc import Callable

from pydantic import ValidationError

# OS errors a user fixes (space, permissions, missing folders), not bugs.
_USER_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOENT,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EEXIST,
    errno.ENAMETOOLONG,
}


class KahaniError(Exception):
    """A problem the user can fix; the message says what and how, on one line."""


class Interrupted(KahaniError):
    """Stopped by Ctrl-C or SIGTERM after keeping what was done: exit code 130."""


def run_cli(app: Callable[..., object]) -> None:
    """Run a Typer app behind the error boundary."""
    import typer

    try:  # Typer 0.29 carries its own click
        from typer._click.exceptions import UsageError
    except ImportError:
        from click.exceptions import UsageError

    debug = os.environ.get("KAHANI_DEBUG") not in (None, "", "0")
    try:
        # Outside standalone mode, click hands back typer.Exit(code) as a return value.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        print(
            "\ninterrupted; what was committed is kept: run the same command again to go on",
            file=sys.stderr,
        )
        sys.exit(130)
    except UsageError as err:  # a flag's type, a missing argument, an unknown command
        if type(err).__name__ == "NoArgsIsHelpError" and err.ctx is not None:
            print(err.ctx.get_help())  # no arguments at all: the help, as --help shows it
            sys.exit(0)
        where = f" (see `{err.ctx.command_path} --help`)" if err.ctx else ""
        _fail(f"{err.format_message()}{where}", debug)
    except Interrupted as err:
        print(f"interrupted: {err}", file=sys.stderr)
        sys.exit(130)
    except KahaniError as err:
        _fail(str(err), debug)
    except OSError as err:
        if err.errno not in _USER_ERRNOS:
            raise
        target = f" {err.filename}" if err.filename else ""
        _fail(f"cannot use{target}: {err.strerror}", debug)
    except Exception as err:
        # A bug: say so on one line, and keep the traceback for the report.
        print(
            f"error: internal error in kahani ({type(err).__name__}: {err}); this is a bug, "
            "please report it with the traceback below",
            file=sys.stderr,
        )
        traceback.print_exc()
        sys.exit(1)


def _fail(message: str, debug: bool) -> None:
    if debug:
        traceback.print_exc()
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(2)


def first_problem(err: ValidationError) -> str:
    """`field.path: message` of a pydantic error's first problem, for a one-line error."""
    problem = err.errors()[0]
    where = ".".join(str(part) for part in problem["loc"])
    return f"{where}: {problem['msg']}"
