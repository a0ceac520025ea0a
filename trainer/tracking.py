"""Optional experiment tracking: with `--track trackio` or `--track wandb`, every row that goes
to metrics.jsonl also goes there. Without the flag nothing is imported and nothing changes;
metrics.jsonl stays the record either way (reports read it, never the tracker)."""

import importlib
import importlib.util
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Tracking:
    """Where metrics should also go; the run's main process starts it when training starts."""

    backend: Backend
    project: str

    def start(self, name: str, config: dict[str, Any]) -> Tracker:
        return Tracker(importlib.import_module(self.backend), self.project, name, config)


def tracking(backend: str | None, project: str) -> Tracking | None:
    """Check --track before any work: a known backend that is installed."""
    if backend is None:
        return None
    if backend not in ("trackio", "wandb"):
        raise KahaniError(f"unknown --track {backend!r}; use trackio or wandb")
    if importlib.util.find_spec(backend) is None:
        raise KahaniError(
            f"--track {backend} needs the {backend} package: pip install {backend} "
            "(or kahani[track]), or drop --track"
        )
    return Tracking(backend, project)  # type: ignore[arg-type]
