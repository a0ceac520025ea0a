"""Ctrl-C and SIGTERM during training: checkpoint, stop, and exit 130 like any interrupted
program (a job scheduler or a shell script can tell an interrupted run from a finished one)."""

import signal
from types import FrameType

from factory.errors import Interrupted  # the CLIs' boundary turns it into exit code 130

__all__ = ["Interrupted", "StopSignal"]


class StopSignal:
    """Turns SIGINT/SIGTERM into a request to checkpoint and stop after the current step."""

    def __init__(self) -> None:
        self.requested = False

    def __enter__(self) -> "StopSignal":
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)
