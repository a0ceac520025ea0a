"""The local record of a fine-tuning job: `<dataset>/finetune/<name>.json`, read and written here
only.

It holds the settings the job was asked with, each uploaded file's id (with the SHA-256 of the
bytes uploaded) and the job's id, each written the moment it exists, atomically (a temporary
file, fsync, rename), so a crash or a dropped connection at any point leaves a record that
the next `factory finetune create` continues from: nothing is uploaded or created twice.
Never a key.
"""

import json
import os
import uuid
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from factory.errors import KahaniError, first_problem


class Hyperparameters(BaseModel):
    """None: OpenAI chooses ("auto")."""

    model_config = ConfigDict(extra="forbid")

    n_epochs: int | None = Field(None, ge=1, le=50, description="Epochs (default: auto).")
    learning_rate_multiplier: float | None = Field(
        None, gt=0, le=10, description="Learning-rate multiplier (default: auto)."
    )
    batch_size: int | None = Field(
        None, ge=1, le=256, description="Examples per batch (default: auto)."
    )


class Upload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str  # the local file uploaded
    sha256: str  # of its bytes when uploaded
    file_id: str | None = None  # set the moment the upload answers


class JobRecord(BaseModel):
    """What `factory finetune create` asked for and what exists at the provider."""

    model_config = ConfigDict(extra="forbid")

    name: str
    tag: str = Field(default_factory=lambda: uuid.uuid4().hex)  # the job's metadata tag
    model: str
    suffix: str | None = None
    hyperparameters: Hyperparameters = Hyperparameters()
    base_url: str | None = None
    language: str | None = None  # of the dataset, for the `judge score` command
    training: Upload
    validation: Upload | None = None
    job_id: str | None = None
    status: str | None = None  # as last seen
    fine_tuned_model: str | None = None

    def settings(self) -> dict:
        """What decides the job: a later command must ask for the same."""
        return {
            "model": self.model,
            "suffix": self.suffix,
            "hyperparameters": self.hyperparameters.model_dump(),
            "base_url": self.base_url,
            "validation": self.validation is not None,
        }


def record_path(dataset: Path, name: str) -> Path:
    folder = dataset if dataset.is_dir() else dataset.parent
    return folder / "finetune" / f"{name}.json"


def records(dataset: Path) -> list[Path]:
    """The records kept for a dataset, by name."""
    folder = (dataset if dataset.is_dir() else dataset.parent) / "finetune"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def load(path: Path) -> JobRecord | None:
    """The record at `path`, or None when there is none yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise KahaniError(f"cannot read fine-tuning record {path}: {err}") from None
    try:
        return JobRecord.model_validate_json(text)
    except ValidationError as err:
        raise KahaniError(
            f"{path} is not a kahani fine-tuning record ({first_problem(err)}); move it away "
            "to start over"
        ) from None


def save(path: Path, record: JobRecord) -> None:
    """Write the record atomically: the old one or the new one, never half of either."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(record.model_dump(mode="json"), indent=2, ensure_ascii=False))
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except OSError as err:
        raise KahaniError(f"cannot write fine-tuning record {path}: {err.strerror}") from None
