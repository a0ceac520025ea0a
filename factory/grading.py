"""A judge as a filter (`factory clean --judge provider:model --min-score S`): an LLM grades
each kept text with a rubric for training data, and texts scored below S are rejected as
`low_score`.

Every request goes through `factory.llm.ask` into the run's `grades.sqlite` (a run store), so
a grade is paid for once: a second clean sends nothing, an interrupted one resumes, and
`openai-batch` grades through the Batch API. A request's id carries a hash of its messages,
so a text that changed is graded again. A rubric is a template (`templates/rubric/<kind>.j2`,
or `--rubric FILE`) whose header names its score keys (`dimensions`), their `scale`, and the
key compared with --min-score (`json_key`); it sees `language`, `prompt` (what the writer
was asked) and `text`.

The answer is read by `factory.scores` (the evaluation judge's reader), on the rubric's own
keys and scale: JSON in code fences or prose, keys in any case or spacing (`Prompt
Following`, `overall_score`), scores as numbers, numeric strings, `8/10` or `{"score": 8}`,
or `name: 8/10` lines without JSON. A missing score or one outside the scale is a problem,
never a number: the text is asked about once more, then recorded without a grade
(`unscored`).
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from pydantic import SecretStr

from factory.errors import KahaniError
from factory.languages import Language
from factory.llm import Endpoint, api_key_for, ask, check_endpoint
from factory.paths import TEMPLATES_DIR
from factory.prompts import Message
from factory.providers.base import GenerationParams
from factory.scores import LANGUAGE_NAMES, Scale, normalize_key, read_scores, rubric_messages
from factory.settings import ProviderName
from factory.store import GradeRow
from factory.templates import PromptTemplate, find_template

ATTEMPTS = 2  # a text whose grade cannot be read is asked about once more
MAX_TOKENS = 400
RUBRIC_VARIABLES = {"language", "prompt", "text"}
UNKNOWN_PROMPT = "(not known: the text was imported)"


class Rubric:
    """A rubric template with its score keys and scale."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.template = PromptTemplate(path)
        header = self.template.header
        if (
            not header.dimensions
            or header.scale is None
            or header.json_key not in header.dimensions
        ):
            raise KahaniError(
                f"rubric {path}: its header needs `dimensions` (the score keys), `scale: "
                "[lowest, highest]` and `json_key`, the dimension compared with --min-score"
            )
        unknown = sorted(self.template.used_variables - RUBRIC_VARIABLES)
        if unknown:
            raise KahaniError(
                f"rubric {path} uses {', '.join(unknown)}; a rubric sees only "
                f"{', '.join(sorted(RUBRIC_VARIABLES))}"
            )
        self.dimensions = [normalize_key(d) for d in header.dimensions]
        self.score_key = normalize_key(header.json_key or "")
        self.low, self.high = header.scale

    @classmethod
    def for_kind(cls, path: Path | None, kind: str) -> "Rubric":
        """The user's rubric, or the shipped data rubric of the language's kind."""
        return cls(find_template(path) if path else TEMPLATES_DIR / "rubric" / f"{kind}.j2")

    @property
    def name(self) -> str:
        return self.template.name

    def check_min_score(self, min_score: float) -> None:
        if not self.low <= min_score <= self.high:
            raise KahaniError(
                f"--min-score {min_score:g} is outside the rubric's scale "
                f"{self.low:g}-{self.high:g} ({self.path.name}); give a score in it"
            )

    def messages(self, language: str, prompt: str, text: str, attempt: int) -> list[Message]:
        variables = {
            "language": LANGUAGE_NAMES.get(language, language),
            "prompt": prompt,
            "text": text,
        }
        retry = (
            "Your last answer could not be used. Answer again with only the JSON object, every "
            f"score a number from {self.low:g} to {self.high:g}."
            if attempt > 1
            else None
        )
        return rubric_messages(self.template, variables, retry)

    def parse(self, answer: str) -> tuple[dict[str, float] | None, str, str]:
        """(scores by dimension or None, the judge's reasoning, the problem when None)."""
        return read_scores(answer, self.dimensions, Scale(self.low, self.high, integers=False))


@dataclass
class Grading:
    """What a judged clean needs: the rubric, the judge, where its answers are kept, and the
    threshold (None: grade only)."""

    rubric: Rubric
    endpoint: Endpoint
    store_path: Path
    language: str
    min_score: float | None = None

    @property
    def judge(self) -> str:
        return f"{self.endpoint.provider}:{self.endpoint.model}"

    def describe(self) -> dict:
        """Recorded with the grades (the store's meta) for stats and reports."""
        return {
            "judge": self.judge,
            "rubric": self.rubric.name,
            "score_key": self.rubric.score_key,
            "scale": [self.rubric.low, self.rubric.high],
            "min_score": self.min_score,
        }

    def grade(self, items: dict[str, tuple[str, str]]) -> dict[str, GradeRow]:
        """Grades of (prompt, text) items by id; asked again once where unusable."""
        params = GenerationParams(
            model=self.endpoint.model, temperature=0, max_tokens=MAX_TOKENS, json_mode=True
        )
        grades: dict[str, GradeRow] = {}
        todo = {
            item_id: (prompt, text, _digest(self.rubric.messages(self.language, prompt, text, 1)))
            for item_id, (prompt, text) in items.items()
        }
        for attempt in range(1, ATTEMPTS + 1):
            requests = {
                f"{item_id}#{digest}#a{attempt}": (
                    item_id,
                    self.rubric.messages(self.language, prompt, text, attempt),
                )
                for item_id, (prompt, text, digest) in todo.items()
            }
            label = f"grading with {self.judge}" + (" (asking again)" if attempt > 1 else "")
            replies = ask(
                self.endpoint,
                self.store_path,
                [(request_id, messages) for request_id, (_, messages) in requests.items()],
                params,
                label,
            )
            again = {}
            for request_id, (item_id, _) in requests.items():
                reply = replies[request_id]
                if reply.text is None:
                    problem = f"request failed: {reply.error}"
                    grades[item_id] = GradeRow(item_id, None, {}, "", problem)
                    continue
                scores, reasoning, problem = self.rubric.parse(reply.text)
                score = scores[self.rubric.score_key] if scores else None
                grades[item_id] = GradeRow(item_id, score, scores or {}, reasoning, problem)
                if scores is None:
                    again[item_id] = todo[item_id]
            todo = again
            if not todo:
                break
        return grades


def _digest(messages: list[Message]) -> str:
    canonical = json.dumps([m.model_dump() for m in messages], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def grading_for(
    spec: str,
    base_url: str | None,
    api_key: str | None,
    batch: bool,
    rubric_path: Path | None,
    min_score: float | None,
    language: Language,
    run_dir: Path,
    batch_poll_seconds: float | None = None,
) -> Grading:
    """The grading of a `factory clean --judge SPEC`, every flag checked before anything is
    sent or written; the judge's answers are kept in RUN_DIR/grades.sqlite."""
    provider, sep, model = spec.partition(":")
    providers = get_args(ProviderName)
    if not sep or not model or provider not in providers:
        raise KahaniError(
            f"--judge expects provider:model with a provider among {', '.join(providers)}, "
            f"e.g. openai:gpt-4o-mini; got {spec!r}"
        )
    if batch:
        if provider not in ("openai", "openai-batch"):
            raise KahaniError("--judge-batch needs an openai:... judge (the Batch API is OpenAI's)")
        provider = "openai-batch"
    rubric = Rubric.for_kind(rubric_path, language.kind)
    if min_score is not None:
        rubric.check_min_score(min_score)
    key = api_key_for(base_url, api_key)
    if provider in ("openai", "openai-batch") and not key and not base_url:
        raise KahaniError(
            f"the judge {spec} needs --judge-api-key (or $OPENAI_API_KEY) or --judge-base-url "
            "of an OpenAI-compatible server"
        )
    endpoint = Endpoint(
        provider=provider,
        model=model,
        base_url=base_url,
        api_key=SecretStr(key) if key else None,
        **({"batch_poll_seconds": batch_poll_seconds} if batch_poll_seconds else {}),
    )
    check_endpoint(endpoint)
    return Grading(rubric, endpoint, run_dir / "grades.sqlite", language.name, min_score)
