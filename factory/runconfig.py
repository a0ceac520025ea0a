"""A generation run's settings: flags, an optional run file (TOML or YAML), and `config.json`.

The settings that decide what an answer is (language, template, words, model, sampling)
are fixed for the life of a run: a resume with any of them changed is refused, naming the
setting. Operational settings (n, limits, concurrency, retries) may change between
invocations. Secrets are never part of this model, so they never reach the run folder.
"""

import hashlib
import json
import tomllib
import uuid
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from factory.errors import KahaniError, first_problem

ProviderName = Literal["openai", "openai-batch", "g4f", "local"]

# Settings that change what an answer is; a resume must keep them.
FIXED = (
    "language",
    "template_sha",
    "vocab_sha",
    "seed",
    "provider",
    "model",
    "temperature",
    "top_p",
    "max_tokens",
    "gen_seed",
    "json_mode",
)


class RunFile(BaseModel):
    """What a run file may set; every key is optional and unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")

    lang: str | None = None
    n: int | None = None
    start: int | None = None
    seed: int | None = None
    name: str | None = None
    template: Path | None = None
    vocab_dir: Path | None = None
    var: dict[str, str] | None = None
    provider: ProviderName | None = None
    model: str | None = None
    base_url: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    gen_seed: int | None = None
    json_mode: bool | None = None
    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    max_attempts: int | None = None
    timeout: float | None = None
    batch_poll_seconds: float | None = None


class RunConfig(BaseModel):
    """The resolved settings, as written to `runs/<name>/config.json`."""

    model_config = ConfigDict(extra="forbid")

    name: str
    run_id: str  # random, made once per run: tags the run's batches at the provider
    language: str
    template: str
    template_sha: str
    vocab_dir: str
    vocab_sha: str
    variables: dict[str, str] = {}
    seed: int
    n: int
    start: int
    provider: ProviderName | Literal["import"]  # "import": data cleaned by `factory clean FILE`
    model: str
    base_url: str | None
    temperature: float | None
    top_p: float | None
    max_tokens: int
    gen_seed: int | None
    json_mode: bool
    rpm: int | None
    tpm: int | None
    concurrency: int
    max_attempts: int
    timeout: float
    batch_poll_seconds: float

    def differences(self, other: "RunConfig") -> list[str]:
        return [key for key in FIXED if getattr(self, key) != getattr(other, key)]


def read_run_file(path: Path) -> RunFile:
    """Parse a TOML (.toml) or YAML (.yaml/.yml) run file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise KahaniError(f"cannot read run file {path}: {err.strerror}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as err:
        raise KahaniError(f"run file {path} is malformed: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise KahaniError(f"run file {path} must hold a table of settings")
    try:
        return RunFile.model_validate(data)
    except ValidationError as err:
        raise KahaniError(f"run file {path}: {first_problem(err)}") from None


def fingerprint(*paths: Path) -> str:
    """Hash of files' bytes: a template or word list edited mid-run changes it."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


def load_config(run_dir: Path) -> RunConfig:
    path = run_dir / "config.json"
    if not path.is_file():
        raise KahaniError(f"{run_dir} is not a run folder (no config.json)")
    try:
        return RunConfig.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as err:
        raise KahaniError(f"{path} is not a kahani run config ({first_problem(err)})") from None


def save_config(run_dir: Path, config: RunConfig) -> None:
    tmp = run_dir / "config.json.tmp"
    tmp.write_text(json.dumps(config.model_dump(), indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(run_dir / "config.json")
