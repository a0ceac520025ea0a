"""Optional experiment tracking: with `--track trackio` or `--track wandb`, every row that goes
to metrics.jsonl also goes there. Without the flag nothing is imported and nothing changes;
metrics.jsonl stays the record either way (reports read it, never the tracker)."""

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from factory.errors import KahaniError

Backend = Literal["trackio", "wandb"]


class Tracker:
    """trackio and wandb share the calls used here: init(project, name, config), log, finish."""

    def __init__(self, lib: ModuleType, project: str, name: str, config: dict[str, Any]) -> None:
        self.lib = lib
        lib.init(project=project, name=name, config=config)

    def log(self, row: dict[str, Any]) -> None:
        metrics = {k: v for k, v in row.items() if k != "step"}
        self.lib.log(metrics, step=row["step"])

    def finish(self) -> None:
        self.lib.finish()


def open_tracker(
    backend: Backend | None, project: str, run_dir: Path, config: dict[str, Any]
) -> Tracker | None:
    """A tracker for the run in `run_dir`, or None without --track."""
    if backend is None:
        return None
    try:
        lib = importlib.import_module(backend)
    except ImportError as err:
        raise KahaniError(
            f"--track {backend} needs the {backend} package: pip install {backend} "
            f"(or kahani[track]), or drop --track"
        ) from err
    return Tracker(lib, project, run_dir.name, config)
