"""Bounds of the options of the commands that are not run settings (those are in spec.py),
and the check that turns a value out of bounds into a one-line error naming its flag.

Light on purpose (pydantic only): the command line imports it before any command runs.
"""

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from factory.errors import KahaniError


class TokenizerOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vocab: int = Field(16000, ge=300, le=1_000_000)
    kind: Literal["bpe", "char", "hf"] = "bpe"
    val_fraction: float = Field(0.05, ge=0, lt=1)


class PrepareOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    val_fraction: float = Field(0.05, ge=0, lt=1)
    dtype: Literal["uint8", "uint16", "uint32"] | None = None


class SampleOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    samples: int = Field(3, gt=0, le=10_000)
    max_tokens: int = Field(300, gt=0)
    temperature: float = Field(0.8, ge=0, le=100)
    top_k: int | None = Field(50, gt=0)
    seed: int = Field(0, ge=0)


class SplitOptions(BaseModel):
    """Held-out share for classify and dpo, whose data rarely comes with a validation split."""

    model_config = ConfigDict(extra="forbid")

    val_fraction: float = Field(0.2, ge=0, le=0.5)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check(model: type[BaseModel], values: dict[str, Any], where: str = "flag") -> dict[str, Any]:
    """Validate each given value against its field's type and bounds; `where` says how the
    error names it: `flag` (--block-size), or a file for the keys of a sweep file."""
    out = {}
    for name, value in values.items():
        field = model.model_fields.get(name)
        label = flag(name) if where == "flag" else f"{where}: {name}"
        if field is None:
            known = ", ".join(sorted(model.model_fields))
            raise KahaniError(f"{label} is not a setting; use one of {known}")
        try:
            # the model with this one field set (every field has a default), so that field
            # validators run too
            out[name] = getattr(model.model_validate({name: value}), name)
        except ValidationError as err:
            raise KahaniError(f"{label}: {problem(err)} (got {value!r})") from err
    return out


def problem(err: ValidationError) -> str:
    msg = err.errors()[0]["msg"].removeprefix("Value error, ")
    return msg[0].lower() + msg[1:]


def validated(model: type[BaseModel], values: dict[str, Any]) -> Any:
    """The whole model from values already checked one by one: what is left are the
    cross-field rules (heads dividing the width, say), given as one line."""
    try:
        return model.model_validate(values)
    except ValidationError as err:
        where = ".".join(str(part) for part in err.errors()[0]["loc"])
        raise KahaniError(f"{where}: {problem(err)}" if where else problem(err)) from err


def writable_dir(path: Path, flag_name: str = "--out") -> Path:
    """Create `path` if needed and check a file can be written there; one line if not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".kahani-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise KahaniError(
            f"{flag_name} {path} cannot be written ({err.strerror or err}); choose another folder"
        ) from err
    return path


def writable_file(path: Path, flag_name: str = "--out") -> Path:
    """Check that the file `path` can be written (its folder is created if needed)."""
    writable_dir(path.parent, flag_name)
    if path.is_dir():
        raise KahaniError(f"{flag_name} {path} is a folder; give a file name such as report.html")
    return path
