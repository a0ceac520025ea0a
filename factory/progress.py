"""What a long call is doing, while it does it: a live bar on a terminal, and a plain line
every few seconds when stderr is a file or a pipe (nohup, CI, `2> log`), so no long command
runs silent."""

import asyncio
import os
import sys
import time
from typing import TextIO

from factory.engine import Tally

# Seconds between lines when stderr is not a terminal; KAHANI_PROGRESS_SECONDS overrides.
LINE_EVERY = 5.0


def rate_line(tally: Tally) -> str:
    """done/failed/rate/tokens/ETA, as one line."""
    elapsed = max(1e-9, time.monotonic() - tally.started)
    finished = tally.done + tally.cached + tally.failed
    per_minute = tally.done / elapsed * 60
    parts = [
        f"{finished:,}/{tally.total:,} done",
        f"{tally.failed:,} failed",
        f"{per_minute:,.0f}/min",
        f"{tally.completion_tokens / elapsed:,.0f} tok/s",
    ]
    if tally.cached:
        parts.append(f"{tally.cached:,} cached")
    if tally.rejected:
        parts.append(f"{tally.rejected:,} rejected")
    if tally.retries:
        parts.append(f"{tally.retries:,} retries ({tally.rate_limited:,} rate-limited)")
    if tally.limit:
        parts.append(f"in flight {tally.in_flight:,}/{tally.limit:,}")
    if tally.note:
        parts.append(tally.note)
    left = tally.total - finished
    if tally.done and left > 0:
        parts.append(f"ETA {_duration(left / (tally.done / elapsed))}")
    return ", ".join(parts)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


class Progress:
    """`async with Progress(label, tally):` shows the tally until the block ends."""

    def __init__(self, label: str, tally: Tally, stream: TextIO | None = None) -> None:
        self.label = label
        self.tally = tally
        self.stream = stream or sys.stderr
        self._task: asyncio.Task[None] | None = None
        self._bar = None

    async def __aenter__(self) -> "Progress":
        if self.stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(
                TextColumn(self.label),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                console=Console(file=self.stream),
                transient=True,  # the summary printed after the run replaces the bar
            )
            self._bar.start()
            bar_task = self._bar.add_task(self.label, total=self.tally.total, detail="")

            async def refresh() -> None:
                while True:
                    finished = self.tally.done + self.tally.cached + self.tally.failed
                    self._bar.update(bar_task, completed=finished, detail=rate_line(self.tally))
                    await asyncio.sleep(0.25)

        else:
            every = float(os.environ.get("KAHANI_PROGRESS_SECONDS", LINE_EVERY))

            async def refresh() -> None:
                print(f"{self.label}: {self.tally.total:,} to send", file=self.stream, flush=True)
                last, note = time.monotonic(), ""
                while True:
                    await asyncio.sleep(0.25)
                    # A line every few seconds, and at once when something goes wrong.
                    if time.monotonic() - last >= every or self.tally.note != note:
                        note, last = self.tally.note, time.monotonic()
                        print(
                            f"{self.label}: {rate_line(self.tally)}", file=self.stream, flush=True
                        )

        self._task = asyncio.create_task(refresh())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._bar is not None:
            self._bar.stop()
        elif exc[0] is None:
            print(f"{self.label}: {rate_line(self.tally)}", file=self.stream, flush=True)
