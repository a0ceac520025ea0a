"""Rubrics: the judge prompt for one (prompt, completion) pair, and a tolerant, strict parser.

Tolerant of form, strict about content. Judges do not spell keys the way they were asked
(the published TinyStories-Regional protocol writes `"context awareness": "7"` with a
`"reason"`), wrap JSON in code fences and prose, nest scores (`{"scores": {...}}`,
`{"grammar": {"score": 8, "reason": ...}}`) or write `8/10`; all of that is read. A missing
dimension, or a score that is not an integer from 1 to 10, is a parse failure, never a
number: it is asked again, then recorded as missing with the raw answer kept.
"""

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from factory.paths import TEMPLATES_DIR
from factory.prompts import Message
from factory.templates import PromptTemplate
from factory.textutil import json_objects

DIMENSIONS = {
    "story": ["context_awareness", "completeness", "grammar", "fluency", "creativity", "overall"],
    "conversation": [
        "relevance",
        "naturalness",
        "code_mixing",
        "transliteration_consistency",
        "fluency",
        "overall",
    ],
}
LANGUAGE_NAMES = {
    "hindi": "Hindi (Devanagari script)",
    "marathi": "Marathi (Devanagari script)",
    "bangla": "Bangla (Bengali script)",
    "english": "English",
    "hinglish": "Hinglish",
}
RETRY_NUDGE = (
    "Your answer could not be used. Answer again with only the JSON object, every score an "
    "integer from 1 to 10."
)
# Keys judges use for their explanation, and for the number inside a per-dimension object.
REASON_KEYS = ("reasoning", "reason", "explanation", "justification", "rationale", "comment")
SCORE_KEYS = ("score", "rating", "value", "grade")
SCALE_MAX = 10
# "8", "8.0", "8/10", "8 / 10", "8 out of 10"; the denominator, when written, must be 10.
_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:(?:/|out of)\s*(\d+(?:\.\d+)?))?\s*\.?\s*", re.I)
_KEY_SEPARATORS = re.compile(r"[\s_\-]+")
# "- **Context Awareness**: 7/10", "2. grammar = 8": a key, then its value
_LINE = re.compile(r"[\s\-*#>•\d.)]*([A-Za-z][A-Za-z _\-]*?)[\s*]*[:=][\s*]*(.+?)\s*")


@dataclass(frozen=True)
class Judgement:
    scores: dict[str, int] | None  # None: the answer could not be parsed into valid scores
    reasoning: str
    problem: str  # why parsing failed ("" when it did not)


def normalize_key(key: str) -> str:
    """`Context Awareness`, `context-awareness` and `context_awareness` are one key; a trailing
    `_score` (`overall_score`) is the same dimension."""
    key = _KEY_SEPARATORS.sub("_", key.strip().casefold()).strip("_")
    return key.removesuffix("_score") if key != "score" else key


def score_value(value: object) -> int | str | None:
    """An integer from 1 to 10 read from a number or a numeric string, else a problem string
    (None when the value is absent)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return f"{value!r} is not a score"
    if isinstance(value, str):
        match = _NUMBER.fullmatch(value)
        if match is None:
            return f"{value!r} is not a number"
        if match[2] is not None and float(match[2]) != SCALE_MAX:
            return f"{value!r} is not on a 1-{SCALE_MAX} scale"
        value = float(match[1])
    if isinstance(value, float):
        if not value.is_integer():
            return f"{value!r} is not an integer"
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= SCALE_MAX:
        return f"{value!r} is not an integer from 1 to {SCALE_MAX}"
    return value


def _entries(obj: dict, skip: Collection[str] = ()) -> Iterator[tuple[str, object]]:
    """(normalized key, value) for every key of a JSON object and of the objects nested in
    it (not those under a key in `skip`), shallowest first, so `{"scores": {...}}` and
    `{"evaluation": {...}}` are read."""
    nested = []
    for key, value in obj.items():
        key = normalize_key(str(key))
        yield key, value
        if isinstance(value, dict) and key not in skip:
            nested.append(value)
    for child in nested:
        yield from _entries(child, skip)


def _first(obj: dict, keys: tuple[str, ...], skip: Collection[str] = ()) -> object:
    for key, value in _entries(obj, skip):
        if key in keys and value not in (None, "", {}):
            return value
    return None


def _from_object(obj: dict, dimensions: list[str]) -> tuple[dict[str, object], list[str]]:
    """Raw values per dimension found in obj (a per-dimension object gives its score), and
    the reasons given beside them."""
    found: dict[str, object] = {}
    reasons = []
    for key, value in _entries(obj):
        if key not in dimensions or key in found:
            continue
        if isinstance(value, dict):  # {"grammar": {"score": 8, "reason": "..."}}
            reason = _first(value, REASON_KEYS)
            if reason:
                reasons.append(f"{key}: {reason}")
            value = _first(value, SCORE_KEYS)
        found[key] = value
    top = _first(obj, REASON_KEYS, skip=dimensions)  # not a reason given for one dimension
    if isinstance(top, str | int | float) and str(top).strip():
        reasons.insert(0, str(top).strip())
    return found, reasons


def _from_lines(answer: str, dimensions: list[str]) -> tuple[dict[str, object], list[str]]:
    """`Grammar: 8/10` lines (markdown bullets and bold allowed), for judges that answer
    without JSON."""
    found: dict[str, object] = {}
    reasons = []
    for line in answer.splitlines():
        match = _LINE.fullmatch(line)
        if match is None:
            continue
        key, value = normalize_key(match[1]), match[2].strip("* ")
        if key in dimensions and key not in found:
            score = _NUMBER.match(value)  # "8/10 (clear and simple)" -> "8/10"
            found[key] = score[0] if score else value
        elif key in REASON_KEYS and not reasons:
            reasons.append(value)
    return found, reasons


class Rubric:
    def __init__(self, kind: str, language: str, path: Path | None = None) -> None:
        self.kind = kind
        self.language = language
        self.dimensions = DIMENSIONS[kind]
        self.template = PromptTemplate(path or TEMPLATES_DIR / "judge" / f"{kind}.j2")

    def messages(self, prompt: str, completion: str, attempt: int = 1) -> list[Message]:
        """The judge's request. It shows the text only, never which model wrote it."""
        variables = {
            "prompt": prompt,
            "completion": completion,
            "language": LANGUAGE_NAMES.get(self.language, self.language),
        }
        messages = []
        if self.template.header.system:
            messages.append(Message(role="system", content=self.template.header.system.strip()))
        messages.append(Message(role="user", content=self.template.render(variables)))
        if attempt > 1:  # a different request, so the cache does not return the bad answer
            messages.append(Message(role="user", content=f"{RETRY_NUDGE} (attempt {attempt})"))
        return messages

    def parse(self, answer: str) -> Judgement:
        """Scores per dimension from the judge's answer: the first JSON object (fenced ones
        first) that names every dimension, else `name: score` lines; a problem otherwise."""
        candidates = [_from_object(obj, self.dimensions) for obj in json_objects(answer)]
        if not candidates:
            candidates = [_from_lines(answer, self.dimensions)]
            if not candidates[0][0]:
                return Judgement(None, "", "no JSON object in the answer")
        complete = [c for c in candidates if len(c[0]) == len(self.dimensions)]
        found, reasons = complete[0] if complete else max(candidates, key=lambda c: len(c[0]))
        scores = {}
        for name in self.dimensions:
            value = score_value(found.get(name))
            if value is None:
                return Judgement(None, "", f"{name}: missing")
            if isinstance(value, str):
                return Judgement(None, "", f"{name}: {value}")
            scores[name] = value
        return Judgement(scores, "; ".join(reasons), "")
