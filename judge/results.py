"""An evaluation folder's files (`runs/eval-<model>/`), read and written here only.

- `completions.jsonl` + `sampling.json`: the samples and the settings that made them; the
  same settings reuse the file instead of sampling again.
- `scores.jsonl`: per completion, its fields plus `metrics` and `judge`.
- `controls.jsonl`: the judge's scores of damaged copies beside their originals.
- `summary.json`: `EvaluationSummary`, the typed headline numbers that `judge`, the reports
  and the benchmarks share; `panel` when several judges (or repeats) scored the samples.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, computed_field, model_validator

from factory.errors import KahaniError, first_problem


@dataclass(frozen=True)
class Completion:
    id: str  # "<prompt id>-s<sample>"
    prompt_id: str
    prompt: str
    reference: str | None
    sample: int
    completion: str
    finish_reason: str | None


class SamplingConfig(BaseModel):
    """Everything that decides the completions; a change means sampling again."""

    model_config = ConfigDict(extra="forbid")

    model: str
    language: str
    kind: str  # story: continue the opening; conversation: reply to the opener
    samples: int
    max_tokens: int
    temperature: float
    top_k: int | None
    top_p: float | None = None
    seed: int
    prompts_sha: str


class Interval(BaseModel):
    mean: float | None = None
    low: float | None = None
    high: float | None = None
    n: int = 0  # values used
    missing: int = 0  # values left out (None)


class MetricSummary(Interval):
    higher_is_better: bool | None
    signature: str
    corpus: float | None = None
    details: dict[str, Any] | None = None
    skipped: str | None = None  # why the metric did not run


class ControlSummary(BaseModel):
    pairs: int
    original_higher: int
    ties: int
    original_lower: int
    missing: int
    rate: float


class JudgeSummary(BaseModel):
    """The judge's headline: one judge's scores, or with a panel (or repeats) the per-item
    mean of every judgement (`judges` then names the judges; provider is "panel")."""

    provider: str
    model: str
    parse_failure_rate: float  # completions with no usable score at all
    dimensions: dict[str, Interval]
    controls: dict[str, ControlSummary]
    judges: list[str] = []  # provider:model of each judge whose scores are averaged

    @computed_field  # type: ignore[prop-decorator]
    @property
    def name(self) -> str:
        if len(self.judges) > 1:
            return f"mean of {', '.join(self.judges)}"
        return f"{self.provider}:{self.model}"


class Figure(BaseModel):
    """An agreement statistic with its 95% bootstrap interval over items (None: undefined,
    e.g. a judge gave every item the same score)."""

    value: float | None
    low: float | None
    high: float | None
    n: int  # items used


class JudgePairAgreement(BaseModel):
    a: str
    b: str
    spearman: Figure
    quadratic_kappa: Figure


class DimensionAgreement(BaseModel):
    krippendorff_alpha: Figure  # ordinal, all judges at once
    pairs: list[JudgePairAgreement]  # every pair of judges


class PanelJudge(BaseModel):
    """One judge of a panel: its own scores (the mean of its repeats per item)."""

    provider: str
    model: str
    parse_failure_rate: float  # judgements (item x repeat) with no usable score
    dimensions: dict[str, Interval]
    controls: dict[str, ControlSummary]
    # per dimension, Krippendorff's alpha over the judge's repeats; empty with one repeat
    self_consistency: dict[str, Figure] = {}

    @computed_field  # type: ignore[prop-decorator]
    @property
    def name(self) -> str:
        return f"{self.provider}:{self.model}"


class PanelSummary(BaseModel):
    """Several judges, or one judge asked several times: each judge's scores, and how far
    they agree (on each judge's first judgement of every completion)."""

    judges: list[PanelJudge]
    repeats: int  # judgements per item and judge
    agreement: dict[str, DimensionAgreement] = {}  # per dimension; empty with one judge


class Heldout(BaseModel):
    file: str
    texts: int
    tokens: int
    perplexity: float
    bits_per_byte: float


class SamplingSettings(BaseModel):
    max_tokens: int
    temperature: float
    top_k: int | None
    top_p: float | None = None
    seed: int

    @model_validator(mode="before")
    @classmethod
    def _older_names(cls, data: Any) -> Any:
        if isinstance(data, dict) and "max_new_tokens" in data:  # before the flags were unified
            data = {("max_tokens" if k == "max_new_tokens" else k): v for k, v in data.items()}
        return data


class EvaluationSummary(BaseModel):
    """`summary.json`."""

    model: str
    language: str
    prompts: int
    samples_per_prompt: int
    completions: int
    settings: SamplingSettings
    metrics: dict[str, MetricSummary]
    judge: JudgeSummary | None = None
    judge_note: str | None = None  # why there is no judge section
    panel: PanelSummary | None = None  # several judges or repeats
    heldout: Heldout | None = None


def write_summary(folder: Path, summary: EvaluationSummary) -> None:
    _write(folder / "summary.json", summary.model_dump_json(indent=2))


def read_summary(folder: Path) -> EvaluationSummary:
    path = folder / "summary.json"
    if not path.is_file():
        raise KahaniError(f"{folder} is not an evaluation folder: it has no summary.json")
    try:
        return EvaluationSummary.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as err:
        raise KahaniError(f"{path} is not a kahani summary ({first_problem(err)})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise KahaniError(f"cannot read {path}: {err}") from None


def write_scores(folder: Path, rows: list[dict]) -> None:
    _write_jsonl(folder / "scores.jsonl", rows)


def read_scores(folder: Path) -> list[dict]:
    """scores.jsonl rows (empty when the folder has none)."""
    return _read_jsonl(folder / "scores.jsonl")


def write_controls(folder: Path, rows: list[dict]) -> None:
    _write_jsonl(folder / "controls.jsonl", rows)


def read_controls(folder: Path) -> list[dict]:
    """controls.jsonl rows (empty when the folder has none)."""
    return _read_jsonl(folder / "controls.jsonl")


def write_completions(folder: Path, cfg: SamplingConfig, completions: list[Completion]) -> None:
    """completions.jsonl, with the sampling settings beside it to know when to reuse it."""
    _write_jsonl(folder / "completions.jsonl", [asdict(c) for c in completions])
    _write(folder / "sampling.json", cfg.model_dump_json(indent=2))


def read_completions(folder: Path, cfg: SamplingConfig) -> list[Completion] | None:
    """The stored completions when they were sampled with exactly these settings."""
    settings = folder / "sampling.json"
    path = folder / "completions.jsonl"
    if not (path.is_file() and settings.is_file()):
        return None
    try:
        stored = SamplingConfig.model_validate_json(settings.read_text(encoding="utf-8"))
    except ValidationError:
        return None  # made by an older kahani, or edited: sample again
    if stored != cfg:
        return None
    return [Completion(**row) for row in _read_jsonl(path)]


def read_sampled(folder: Path) -> tuple[SamplingConfig, list[Completion]]:
    """An evaluation folder's completions with the settings they were sampled with."""
    settings, path = folder / "sampling.json", folder / "completions.jsonl"
    if not settings.is_file() or not path.is_file():
        raise KahaniError(
            f"{folder} has no completions.jsonl and sampling.json: run `judge score` first"
        )
    try:
        cfg = SamplingConfig.model_validate_json(settings.read_text(encoding="utf-8"))
        return cfg, [Completion(**row) for row in _read_jsonl(path)]
    except (ValidationError, TypeError) as err:
        reason = str(err).splitlines()[0]
        raise KahaniError(f"{folder}: unreadable evaluation ({reason})") from None


def read_sampling(folder: Path) -> dict[str, Any]:
    """sampling.json as shown on the report ({} when absent)."""
    path = folder / "sampling.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _write(path: Path, text: str) -> None:
    try:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as err:
        raise KahaniError(f"cannot write {path}: {err.strerror}") from None


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    _write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise KahaniError(f"{path}:{number}: not JSON ({err.msg})") from None
    return rows
