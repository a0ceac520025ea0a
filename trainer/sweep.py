"""Hyperparameter sweeps: a grid or random search over `trainer train` settings, each trial an
ordinary resumable run in `<out>/trial-NNN/`.

A sweep file (YAML or TOML) has these keys, all but `data` and `search` optional:

    data: data            # output of `trainer prepare`
    init: runs/base       # start every trial from this run (transfer), as `trainer train --init`
    out: runs/sweep       # default: runs/<sweep file name>
    method: grid          # grid (every combination) or random (`trials` draws)
    trials: 8             # random only
    seed: 0               # random only: the draws
    fixed: {preset: tiny, steps: 500}
    search:
      lr: [1e-3, 3e-3]                     # a list: each value (grid) or one of them (random)
      dropout: {min: 0.0, max: 0.2}        # random only: uniform, `log: true` for log-uniform

Settings are `trainer train`'s flags with underscores (block_size, width, depth, heads, lr,
batch_size, dropout, freeze, ...), checked against the same bounds. The trials are a pure
function of the file, so a restart finds them again: finished trials are skipped, an
interrupted one resumes from its checkpoint. `--worker I/N` (a job array) or `torchrun`
(each process a worker) splits the trials among workers without touching the file.
"""

import itertools
import json
import os
import random
import shutil
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from factory.errors import KahaniError
from trainer.options import check
from trainer.spec import ModelOptions, TrainConfig

Value = float | int | str | bool | None


class Range(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min: float
    max: float
    log: bool = False


class SweepFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: str
    init: str | None = None
    out: str | None = None
    method: Literal["grid", "random"] = "grid"
    trials: int | None = Field(None, gt=0, le=10_000)
    seed: int = 0
    fixed: dict[str, Value] = {}
    search: dict[str, list[Value] | Range]


def _settings_check(path: Path, settings: dict[str, Any]) -> None:
    """Every key a `trainer train` setting, every value within its bounds."""
    model = {k: v for k, v in settings.items() if k in ModelOptions.model_fields}
    train = {k: v for k, v in settings.items() if k not in ModelOptions.model_fields}
    check(ModelOptions, model, where=str(path))
    check(TrainConfig, train, where=str(path))


def read_sweep(path: Path) -> SweepFile:
    """The sweep file, with unknown keys and out-of-bounds settings as one-line errors."""
    if not path.is_file():
        raise KahaniError(f"sweep file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as err:
        first_line = str(err).splitlines()[0]
        raise KahaniError(f"{path} is not valid {path.suffix[1:].upper()}: {first_line}") from err
    if not isinstance(raw, dict):
        raise KahaniError(f"{path} must hold a mapping of keys (data, search, ...)")
    unknown = sorted(set(raw) - set(SweepFile.model_fields))
    if unknown:
        raise KahaniError(
            f"{path}: unknown key {unknown[0]!r}; a sweep file has "
            + ", ".join(SweepFile.model_fields)
        )
    try:
        sweep = SweepFile.model_validate(raw)
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise KahaniError(f"{path}: {where}: {problem['msg']}") from err
    if not sweep.search:
        raise KahaniError(f"{path}: 'search' names no setting to vary")
    if sweep.method == "random" and sweep.trials is None:
        raise KahaniError(f"{path}: a random search needs 'trials', the number of draws")
    if sweep.method == "grid" and any(isinstance(v, Range) for v in sweep.search.values()):
        raise KahaniError(f"{path}: a grid needs lists of values; min/max ranges are for random")
    if sweep.method == "grid" and sweep.trials is not None:
        raise KahaniError(f"{path}: 'trials' is for random searches; a grid runs every combination")
    both = sorted(set(sweep.fixed) & set(sweep.search))
    if both:
        raise KahaniError(f"{path}: {both[0]!r} is both fixed and searched; keep one")
    _settings_check(path, sweep.fixed)
    for key, values in sweep.search.items():
        if isinstance(values, Range):
            _settings_check(path, {key: values.min})
            _settings_check(path, {key: values.max})
        else:
            for value in values:
                _settings_check(path, {key: value})
    return sweep


def trials(sweep: SweepFile) -> list[dict[str, Any]]:
    """The settings of every trial: a pure function of the file."""
    keys = list(sweep.search)
    if sweep.method == "grid":
        grids = [sweep.search[k] for k in keys]
        combos = [dict(zip(keys, values, strict=True)) for values in itertools.product(*grids)]
        return [{**sweep.fixed, **c} for c in combos]
    rng = random.Random(sweep.seed)
    out = []
    for _ in range(sweep.trials or 0):
        drawn: dict[str, Any] = {}
        for key in keys:
            space = sweep.search[key]
            if isinstance(space, Range):
                if space.log:
                    lo, hi = sorted((space.min, space.max))
                    value = 10 ** rng.uniform(_log10(lo), _log10(hi))
                else:
                    value = rng.uniform(space.min, space.max)
                drawn[key] = float(f"{value:.4g}")
            else:
                drawn[key] = rng.choice(space)
        out.append({**sweep.fixed, **drawn})
    return out


def _log10(x: float) -> float:
    import math

    if x <= 0:
        raise KahaniError(f"a log-uniform range needs positive bounds (got {x})")
    return math.log10(x)


def _worker(option: str | None) -> tuple[int, int]:
    """(this worker, workers): from --worker I/N, from torchrun's RANK/WORLD_SIZE, or (0, 1)."""
    if option is not None:
        try:
            index, count = (int(part) for part in option.split("/"))
        except ValueError:
            raise KahaniError(f"--worker {option!r}: write I/N, e.g. 0/4") from None
        if not 0 <= index < count:
            raise KahaniError(f"--worker {option}: I must be between 0 and N-1")
        return index, count
    if "WORLD_SIZE" in os.environ:  # torchrun: each process runs its own trials, alone
        index, count = int(os.environ.pop("RANK", "0")), int(os.environ.pop("WORLD_SIZE"))
        return index, count
    return 0, 1


def _status(run_dir: Path) -> str:
    if (run_dir / "hf" / "model.safetensors").is_file():
        return "done"
    if any((run_dir / "checkpoints").glob("step_*")):
        return "interrupted"
    return "pending"


def _last(run_dir: Path, key: str) -> tuple[float | None, int]:
    """The last logged value of `key` and the last step, from metrics.jsonl."""
    path = run_dir / "metrics.jsonl"
    value, step = None, 0
    if path.is_file():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            step = max(step, row["step"])
            if key in row:
                value = row[key]
    return value, step


def results(out: Path, settings: list[dict[str, Any]], varied: list[str]) -> list[dict[str, Any]]:
    """One row per trial, sorted by the last validation bits per byte (unmeasured last)."""
    rows = []
    for i, trial in enumerate(settings):
        run_dir = out / trial_name(i)
        bpb, step = _last(run_dir, "val_bpb")
        rows.append(
            {
                "trial": trial_name(i),
                **{k: trial.get(k) for k in varied},
                "val_bpb": bpb,
                "val_loss": _last(run_dir, "val_loss")[0],
                "loss": _last(run_dir, "loss")[0],
                "step": step,
                "status": _status(run_dir),
            }
        )
    return sorted(rows, key=lambda r: (r["val_bpb"] is None, r["val_bpb"] or 0.0))


def trial_name(i: int) -> str:
    return f"trial-{i:03d}"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def run_sweep(path: Path, out: Path | None, worker: str | None) -> list[dict[str, Any]]:
    """Run this worker's unfinished trials, then print and save the results table."""
    from trainer.train import pretrain

    sweep = read_sweep(path)
    settings = trials(sweep)
    out = out or Path(sweep.out or f"runs/{path.stem}")
    index, count = _worker(worker)
    record = {"file": str(path), "data": sweep.data, "init": sweep.init, "trials": settings}
    saved = out / "sweep.json"
    if saved.is_file():
        before = json.loads(saved.read_text())
        if before["trials"] != settings or before["data"] != sweep.data:
            raise KahaniError(
                f"{path} describes other trials than the sweep in {out} (the file changed); "
                "give another --out or restore the file"
            )
    else:
        out.mkdir(parents=True, exist_ok=True)
        tmp = saved.with_name(f"sweep.json.{os.getpid()}.tmp")  # workers may start together
        tmp.write_text(json.dumps(record, indent=1))
        tmp.replace(saved)
    model_keys = set(ModelOptions.model_fields)
    for i, trial in enumerate(settings):
        if i % count != index:
            continue
        run_dir = out / trial_name(i)
        status = _status(run_dir)
        shown = ", ".join(f"{k}={_fmt(trial[k])}" for k in sweep.search)
        if status == "done":
            print(f"{trial_name(i)}: done, skipped ({shown})", flush=True)
            continue
        if status == "pending" and (run_dir / "checkpoints").exists():
            shutil.rmtree(run_dir / "checkpoints")  # killed while writing its first checkpoint
        print(f"{trial_name(i)}: {'resuming' if status == 'interrupted' else 'starting'} ({shown})")
        model_opts = {k: v for k, v in trial.items() if k in model_keys and v is not None}
        train_opts = {k: v for k, v in trial.items() if k not in model_keys and v is not None}
        pretrain(
            Path(sweep.data),
            run_dir,
            {} if status == "interrupted" else model_opts,
            train_opts,
            resume=status == "interrupted",
            init=Path(sweep.init) if sweep.init else None,
        )
    table = results(out, settings, list(sweep.search))
    tmp = out / f"results.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(table, indent=1))
    tmp.replace(out / "results.json")
    _print_table(table)
    best = next((r for r in table if r["val_bpb"] is not None), None)
    if best is not None:
        shown = ", ".join(f"{k}={_fmt(best[k])}" for k in sweep.search)
        print(f"best: {best['trial']} ({shown}): val bits/byte {best['val_bpb']:.4f}")
    return table


def _print_table(table: list[dict[str, Any]]) -> None:
    columns = list(table[0])
    cells = [[_fmt(row[c]) for c in columns] for row in table]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
