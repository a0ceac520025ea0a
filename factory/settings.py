"""A generation run's settings, declared once: names, defaults, bounds and help.

Flags, run files (`--config run.toml`) and `runs/<name>/config.json` use the same names,
and the CLI's help and checks come from the fields here, so a flag and a run-file key are
checked by the same rule. The settings that decide what an answer is (`FIXED`) stay the
same for the life of a run: a resume that changes one is refused, naming it. Secrets are
never part of these models, so they never reach the run folder.
"""

import difflib
import hashlib
import json
import tomllib
import uuid
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from factory.errors import KahaniError

ProviderName = Literal["openai", "openai-batch", "g4f", "local"]

LOCAL_DEFAULT_MODEL = "smollm2"
API_DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_MAX_TOKENS = 1024
# Small local models loop under greedy decoding and rarely stop early: sample, and cap
# answers nearer a story's length.
LOCAL_SAMPLING = {"temperature": 0.7, "top_p": 0.9, "max_tokens": 512}
# At 10,000 requests/minute and 10 s per answer, Little's law needs about 1,700 in flight.
DEFAULT_MAX_CONCURRENCY = 2000


class LLMLimits(BaseModel):
    """How hard one endpoint may be pushed: the limits paid for and the engine's bounds."""

    model_config = ConfigDict(extra="forbid")

    rpm: int | None = Field(
        None,
        gt=0,
        description="Requests per minute you pay for (default: read from the server's "
        "x-ratelimit headers, else found by backing off).",
    )
    tpm: int | None = Field(None, gt=0, description="Tokens per minute you pay for.")
    max_concurrency: int = Field(
        DEFAULT_MAX_CONCURRENCY,
        ge=1,
        le=100_000,
        description="Requests in flight at most; below it the engine follows the rate limit "
        "and the server's latency.",
    )
    max_attempts: int = Field(6, ge=1, le=100, description="Attempts per request before it fails.")
    timeout: float = Field(120.0, gt=0, le=3600, description="Seconds per request.")
    batch_poll_seconds: float = Field(
        30.0, gt=0, le=3600, description="Batch API: seconds between status checks."
    )
    threads: int | None = Field(
        None, ge=1, le=1024, description="Local models: CPU threads (default: all cores)."
    )
    batch_size: int = Field(
        8, ge=1, le=1024, description="Local models: answers generated together."
    )


class CleanSettings(BaseModel):
    """The validators' thresholds and the near-duplicate threshold."""

    model_config = ConfigDict(extra="forbid")

    min_words: int = Field(60, ge=0, description="Reject stories shorter than this (words).")
    max_words: int = Field(800, ge=1, description="Reject stories longer than this (words).")
    min_script_share: float = Field(
        0.95, ge=0, le=1, description="Least share of letters in the language's script (0-1)."
    )
    min_cmi: float = Field(
        5.0, ge=0, le=50, description="Hinglish: least Code-Mixing Index (0-50)."
    )
    dedup_threshold: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Jaccard similarity (0-1) above which stories are near-duplicates.",
    )
    decontaminate: list[Path] = Field(
        [],
        description="Evaluation prompts (.txt, one a line, or .jsonl with `prompt`) to keep out "
        "of the data: a text sharing a long n-gram with one is rejected as contaminated.",
    )
    decontaminate_shipped: bool = Field(
        True, description="Also keep kahani's shipped evaluation prompt sets out of the data."
    )
    contamination_ngram: int = Field(
        13,
        ge=4,
        le=100,
        description="Words in a row a text must share with an evaluation prompt to be "
        "contaminated (a shorter prompt must appear whole).",
    )

    @model_validator(mode="after")
    def _words_in_order(self) -> "CleanSettings":
        if self.max_words < self.min_words:
            raise ValueError(f"max_words ({self.max_words}) is below min_words ({self.min_words})")
        return self


class RunSettings(LLMLimits, CleanSettings):
    """Everything a `factory generate` run can be told. None means "the default for the
    language or provider", resolved when the run starts (see `factory.generate.resolve`)."""

    lang: str | None = Field(None, description="Language of the run.")
    n: int = Field(100, ge=1, description="How many prompts.")
    start: int = Field(0, ge=0, description="Index of the first prompt.")
    seed: int = Field(0, description="Seed of the prompt order; same seed, same prompts.")
    name: str | None = Field(None, description="Run name (default <lang>-<model>-seed<seed>).")
    template: Path | None = Field(
        None, description="Your own Jinja template instead of the shipped one."
    )
    vocab_dir: Path | None = Field(
        None, description="Folder of word lists (default: the shipped lists of the language)."
    )
    var: dict[str, str] = Field({}, description="Fixed template variables: --var turns=8.")
    provider: ProviderName | None = Field(
        None,
        description="openai, openai-batch, g4f or local (default: openai when a key or "
        "--base-url is given, else local).",
    )
    model: str | None = Field(
        None,
        description="Model name as the provider knows it (default gpt-4o-mini; local: "
        "SmolLM2-135M, which writes English only).",
    )
    base_url: str | None = Field(
        None, description="Any OpenAI-compatible server, e.g. http://localhost:8000/v1."
    )
    temperature: float | None = Field(
        None, ge=0, le=2, description="Sampling temperature, 0-2 (local models: 0.7)."
    )
    top_p: float | None = Field(
        None, gt=0, le=1, description="Nucleus sampling, 0-1 (local models: 0.9)."
    )
    max_tokens: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description=f"Cap on tokens per answer (default {DEFAULT_MAX_TOKENS}; local models: "
        f"{LOCAL_SAMPLING['max_tokens']}).",
    )
    gen_seed: int | None = Field(None, description="Sampling seed sent to the provider.")
    json_mode: bool = Field(False, description="Ask the provider for a JSON object.")
    license: str = Field("cc-by-4.0", description="License id for the dataset card.")
    export: bool = Field(True, description="Write runs/<name>/dataset/ at the end.")
    diversify: bool = Field(
        False,
        description="Also fill the template's diversity slots from word lists: the main "
        "character's name, the setting, the story style and a narrative device.",
    )
    from_dataset: Path | None = Field(
        None,
        description="Make one prompt per row of this dataset (.jsonl, .parquet, .csv or a "
        "Hugging Face dataset folder); the template's variables are its columns.",
    )
    column_map: dict[str, str] = Field(
        {}, description="With --from-dataset: template variable=column, e.g. story=text."
    )


# Settings that change what an answer is; a resume must keep them.
FIXED = (
    "lang",
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
    "diversify",
)
# Names an older kahani wrote in config.json, and what they are called now.
_RENAMED = {"language": "lang", "variables": "var"}
_DROPPED = ("concurrency",)  # replaced by max_concurrency, which the engine now tunes itself


class RunConfig(RunSettings):
    """The resolved settings, as written to `runs/<name>/config.json`."""

    name: str
    lang: str
    provider: ProviderName | Literal["import"]  # "import": data cleaned by `factory clean FILE`
    model: str
    max_tokens: int = Field(DEFAULT_MAX_TOKENS, ge=1)
    run_id: str = Field(default_factory=lambda: uuid.uuid4().hex[:16])  # tags batches
    template_sha: str = ""  # hash of the template's bytes ("" for imported data)
    vocab_sha: str = ""  # hash of the word lists' bytes

    @model_validator(mode="before")
    @classmethod
    def _older_names(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(k in data for k in (*_RENAMED, *_DROPPED)):
            data = {_RENAMED.get(k, k): v for k, v in data.items() if k not in _DROPPED}
        return data

    def differences(self, other: "RunConfig") -> list[str]:
        return [key for key in FIXED if getattr(self, key) != getattr(other, key)]

    def settings(self) -> dict[str, Any]:
        """The settings a resume starts from (everything but the derived fields)."""
        return self.model_dump(exclude={"run_id", "template_sha", "vocab_sha"})


class GradeSettings(BaseModel):
    """`factory clean --judge`: an LLM grades the kept texts with a rubric for training data."""

    model_config = ConfigDict(extra="forbid")

    judge: str | None = Field(
        None,
        description="Grade each kept text with this model, provider:model (e.g. "
        "openai:gpt-4o-mini; openai-batch:... for the Batch API).",
    )
    judge_base_url: str | None = Field(None, description="The judge's OpenAI-compatible server.")
    rubric: Path | None = Field(
        None,
        description="Your own rubric template (default: the shipped data rubric of the "
        "language's kind, templates/rubric/story.j2 or conversation.j2).",
    )
    min_score: float | None = Field(
        None,
        description="Reject kept texts the judge scores below this (within the rubric's "
        "scale) as low_score.",
    )


def checked(model: type[BaseModel], values: dict[str, Any], source: str) -> dict[str, Any]:
    """`values` checked against `model`'s fields and bounds; returns them as given.

    `source` names where they came from, for the one-line error: "flags" names the flag,
    anything else (a run file's path) names the key in that file."""
    try:
        model.model_validate(values)
    except ValidationError as err:
        raise KahaniError(describe(err, model, source)) from None
    return values


def describe(err: ValidationError, model: type[BaseModel], source: str) -> str:
    """A pydantic error as one line: the flag or key, what is wrong, what was given."""
    problem = err.errors()[0]
    key = str(problem["loc"][0]) if problem["loc"] else ""
    where = f"--{key.replace('_', '-')}" if source == "flags" else f"{source}: {key}"
    if problem["type"] == "extra_forbidden":
        near = difflib.get_close_matches(key, list(model.model_fields), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        return f"{source}: unknown setting {key!r}{hint}"
    message = problem["msg"]
    if not key:  # a rule across fields
        return f"{source}: {message.removeprefix('Value error, ')}"
    given = problem.get("input")
    shown = "" if isinstance(given, dict) else f" (got {given!r})"
    return f"{where}: {message[0].lower()}{message[1:]}{shown}"


def read_run_file(path: Path) -> dict[str, Any]:
    """The settings a TOML (.toml) or YAML (.yaml/.yml) run file gives, checked."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise KahaniError(f"cannot read run file {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise KahaniError(f"run file {path} is not UTF-8 text") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as err:
        raise KahaniError(f"run file {path} is malformed: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise KahaniError(f"run file {path} must hold a table of settings")
    return checked(RunSettings, data, f"run file {path}")


def fingerprint(*paths: Path) -> str:
    """Hash of files' bytes: a template or word list edited mid-run changes it."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def load_config(run_dir: Path) -> RunConfig:
    path = run_dir / "config.json"
    if not path.is_file():
        raise KahaniError(f"{run_dir} is not a run folder (no config.json)")
    try:
        return RunConfig.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as err:
        raise KahaniError(
            f"{path} is not a kahani run config ({describe(err, RunConfig, str(path))})"
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise KahaniError(f"cannot read {path}: {err}") from None


def save_config(run_dir: Path, config: RunConfig) -> None:
    tmp = run_dir / "config.json.tmp"
    data = config.model_dump(mode="json")
    try:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(run_dir / "config.json")
    except OSError as err:
        raise KahaniError(f"cannot write {run_dir / 'config.json'}: {err.strerror}") from None
