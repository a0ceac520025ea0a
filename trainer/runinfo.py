"""What a training report shows, read from run folders (run.json, metrics.jsonl, samples.jsonl,
classification.json) and sweep folders (sweep.json, results.json) as plain data: the report
renderer (reports/training.py) receives it and reads no trainer file itself."""

import json
from pathlib import Path
from typing import Any

import torch

from factory.errors import KahaniError
from trainer import freeze
from trainer.spec import RunSpec


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def parameter_counts(spec: RunSpec) -> dict[str, int]:
    """Total and trainable parameters of the run's model, counted on the meta device (no
    memory, no weights needed)."""
    from trainer.classify import Classifier
    from trainer.model import GPT

    with torch.device("meta"):
        model: torch.nn.Module = GPT(spec.model)
        if spec.kind == "classify" and spec.classify is not None:
            model = Classifier(model, len(spec.classify.labels))
    freeze.apply(spec.train.freeze, model)
    params = list(model.parameters())
    return {
        "total": sum(p.numel() for p in params),
        "trainable": sum(p.numel() for p in params if p.requires_grad),
    }


def load_run(run_dir: Path, name: str | None = None) -> dict[str, Any]:
    path = run_dir / "run.json"
    if not path.is_file():
        raise KahaniError(
            f"{run_dir} is not a trainer run (no run.json); give folders made by trainer "
            "train, sft, classify, dpo or sweep"
        )
    spec = RunSpec.model_validate_json(path.read_text())
    classification = run_dir / "classification.json"
    return {
        "name": name or run_dir.name,
        "path": str(run_dir),
        "spec": spec.model_dump(),
        "parameters": parameter_counts(spec),
        "metrics": _jsonl(run_dir / "metrics.jsonl"),
        "samples": _jsonl(run_dir / "samples.jsonl"),
        "classification": json.loads(classification.read_text())
        if classification.is_file()
        else None,
        "finished": (run_dir / "hf").is_dir(),
    }


def load_runs(paths: list[Path]) -> tuple[dict[str, Any], Path]:
    """Runs (a sweep's trials included) and any sweep results; and where the report goes by
    default: into the run or sweep folder when there is one, else training-report.html."""
    runs: list[dict[str, Any]] = []
    sweeps = []
    for path in paths:
        if (path / "sweep.json").is_file():
            sweep = json.loads((path / "sweep.json").read_text())
            varied = sorted({k for t in sweep["trials"] for k in t if _varies(sweep["trials"], k)})
            for i, settings in enumerate(sweep["trials"]):
                trial = path / f"trial-{i:03d}"
                if (trial / "run.json").is_file():
                    shown = ", ".join(f"{k}={settings[k]}" for k in varied)
                    runs.append(load_run(trial, f"{trial.name} ({shown})"))
            results = path / "results.json"
            sweeps.append(
                {
                    "name": path.name,
                    "varied": varied,
                    "results": json.loads(results.read_text()) if results.is_file() else [],
                }
            )
        else:
            runs.append(load_run(path))
    if not runs:
        raise KahaniError(f"{paths[0]} holds no trial that has started; run the sweep first")
    names = [r["name"] for r in runs]
    if len(set(names)) < len(names):  # two runs of the same name: tell them apart by path
        for r in runs:
            r["name"] = r["path"]
    default = paths[0] / "report.html" if len(paths) == 1 else Path("training-report.html")
    return {"runs": runs, "sweeps": sweeps}, default


def _varies(trials: list[dict[str, Any]], key: str) -> bool:
    return len({json.dumps(t.get(key)) for t in trials}) > 1
