"""Checkpoints written atomically and verified before use.

`runs/<name>/checkpoints/step_00000040/` holds `model.safetensors`, `optimizer.pt` (plain
tensors and numbers, read with `weights_only=True`) and `state.json` (step, configs, and the
size and sha256 of each file). The directory is written under a temporary name and renamed,
so a crash leaves either a whole checkpoint or none; a file damaged later fails its checksum
and the previous checkpoint is used instead.
"""

import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from factory.errors import KahaniError

MODEL_FILE, OPTIM_FILE, STATE_FILE = "model.safetensors", "optimizer.pt", "state.json"


@dataclass
class Checkpoint:
    path: Path
    step: int
    state: dict[str, Any]  # the contents of state.json

    def model_tensors(self) -> dict[str, torch.Tensor]:
        return load_file(self.path / MODEL_FILE)

    def optimizer_states(self) -> list[dict[str, Any]]:
        return torch.load(self.path / OPTIM_FILE, weights_only=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """State dict with each shared (tied) tensor once: safetensors refuses shared storage, and
    loading the first name fills every name that shares it."""
    seen: set[int] = set()
    out = {}
    for name, tensor in model.state_dict().items():
        if tensor.data_ptr() in seen:  # lm_head.weight when it is the embedding matrix
            continue
        seen.add(tensor.data_ptr())
        out[name] = tensor.detach().contiguous().cpu()
    return out


def load_model_tensors(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Load what model_tensors saved; names left out must be ties to a loaded tensor."""
    tied = {name for name, _ in model.named_parameters(remove_duplicate=False)} - {
        name for name, _ in model.named_parameters()
    }
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if unexpected or set(missing) - tied:
        raise KahaniError(
            f"checkpoint tensors do not fit the model (missing {sorted(set(missing) - tied)[:3]}, "
            f"unexpected {sorted(unexpected)[:3]}); resume with the run's own settings"
        )


def save(
    run_dir: Path,
    step: int,
    model: torch.nn.Module,
    optimizers: list[torch.optim.Optimizer],
    state: dict[str, Any],
    keep: int,
) -> Path:
    """Write checkpoint `step` atomically and delete all but the newest `keep`."""
    root = run_dir / "checkpoints"
    final = root / f"step_{step:08d}"
    tmp = root / f".tmp_step_{step:08d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(model_tensors(model), tmp / MODEL_FILE, metadata={"format": "pt"})
    torch.save([opt.state_dict() for opt in optimizers], tmp / OPTIM_FILE)
    files = {
        name: {"bytes": (tmp / name).stat().st_size, "sha256": _sha256(tmp / name)}
        for name in (MODEL_FILE, OPTIM_FILE)
    }
    (tmp / STATE_FILE).write_text(json.dumps({**state, "step": step, "files": files}, indent=1))
    for name in (MODEL_FILE, OPTIM_FILE, STATE_FILE):
        with open(tmp / name, "rb") as f:
            os.fsync(f.fileno())
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in sorted(root.glob("step_*"))[:-keep]:
        shutil.rmtree(old)
    return final


def verify(path: Path) -> Checkpoint:
    """Load state.json and check every file's size and checksum; KahaniError if damaged."""
    try:
        state = json.loads((path / STATE_FILE).read_text())
        files = state["files"]
    except (OSError, ValueError, KeyError) as err:
        raise KahaniError(
            f"checkpoint {path} has no readable {STATE_FILE} ({err}); use an earlier one"
        ) from err
    for name, expect in files.items():
        file = path / name
        size = file.stat().st_size if file.exists() else -1
        if size != expect["bytes"] or _sha256(file) != expect["sha256"]:
            raise KahaniError(
                f"checkpoint file {file} is truncated or damaged "
                f"({size} of {expect['bytes']} bytes); "
                "delete that checkpoint directory to resume from the one before"
            )
    return Checkpoint(path=path, step=int(state["step"]), state=state)


def latest(run_dir: Path) -> Checkpoint | None:
    """The newest checkpoint that verifies; damaged newer ones are reported and skipped."""
    candidates = sorted((run_dir / "checkpoints").glob("step_*"), reverse=True)
    for path in candidates:
        try:
            return verify(path)
        except KahaniError as err:
            print(f"warning: skipping {path.name}: {err}", file=sys.stderr)
    if candidates:
        raise KahaniError(
            f"no checkpoint in {run_dir / 'checkpoints'} is intact; "
            "start a new run with a new --out"
        )
    return None
