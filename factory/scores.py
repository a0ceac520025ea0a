"""Reading scores out of what LLM judges write: one tolerant, strict reader for the judge's
rubrics (`judge/rubric.py`) and the data rubrics of `factory clean --judge` (`grading.py`).

Tolerant of form, strict about content. Judges do not spell keys the way they were asked
(the published TinyStories-Regional protocol writes `"context awareness": "7"` with a
`"reason"`), wrap JSON in code fences and prose, nest scores (`{"scores": {...}}`,
`{"grammar": {"score": 8, "reason": ...}}`) or write `8/10`; all of that is read. A missing
dimension, or a score off the rubric's scale, is a problem, never a number.
"""

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from factory.prompts import Message
from factory.templates import PromptTemplate
from factory.textutil import json_objects

LANGUAGE_NAMES = {
    "hindi": "Hindi (Devanagari script)",
    "marathi": "Marathi (Devanagari script)",
    "bangla": "Bangla (Bengali script)",
    "english": "English",
    "hinglish": "Hinglish",
}
# Keys judges use for their explanation, and for the number inside a per-dimension object.
REASON_KEYS = ("reasoning", "reason", "explanation", "justification", "rationale", "comment")
SCORE_KEYS = ("score", "rating", "value", "grade")

_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:(?:/|out of)\s*(\d+(?:\.\d+)?))?\s*\.?\s*", re.I)
_KEY_SEPARATORS = re.compile(r"[\s_\-]+")
# "- **Context Awareness**: 7/10", "2. grammar = 8": a key, then its value, on one line
_LINE = re.compile(r"[\s\-*#>•\d.)]*([A-Za-z][A-Za-z _\-]*?)[\s*]*[:=][\s*]*(.+?)\s*")


@dataclass(frozen=True)
class Scale:
    low: float
    high: float
    integers: bool  # the judge's 1-10 rubrics: 7.5 is a problem, not a score

    def value(self, raw: object) -> float | int | str | None:
        """A score read from a number or a numeric string ("8", "8/10", "8 out of 10"), else
        a problem string (None when the value is absent)."""
        if raw is None:
            return None
        if isinstance(raw, bool):
            return f"{raw!r} is not a score"
        if isinstance(raw, str):
            match = _NUMBER.fullmatch(raw)
            if match is None:
                return f"{raw!r} is not a number"
            if match[2] is not None and float(match[2]) != self.high:
                return f"{raw!r} is not on a {self.low:g}-{self.high:g} scale"
            raw = float(match[1])
        if not isinstance(raw, int | float):
            return f"{raw!r} is not a score"
        if self.integers:
            if isinstance(raw, float) and not raw.is_integer():
                return f"{raw!r} is not an integer"
            raw = int(raw)
        if not self.low <= raw <= self.high:
            kind = "an integer" if self.integers else "a score"
            return f"{raw!r} is not {kind} from {self.low:g} to {self.high:g}"
        return raw if self.integers else float(raw)


def normalize_key(key: str) -> str:
    """`Context Awareness`, `context-awareness` and `context_awareness` are one key; a trailing
    `_score` (`overall_score`) is the same dimension."""
    key = _KEY_SEPARATORS.sub("_", key.strip().casefold()).strip("_")
    return key.removesuffix("_score") if key != "score" else key


def read_scores(
    answer: str, dimensions: list[str], scale: Scale
) -> tuple[dict[str, float | int] | None, str, str]:
    """(scores by dimension or None, the judge's reasoning, the problem when None): the first
    JSON object (fenced ones first) that names every dimension, else `name: score` lines."""
    candidates = [_from_object(obj, dimensions) for obj in json_objects(answer)]
    if not candidates:
        candidates = [_from_lines(answer, dimensions)]
        if not candidates[0][0]:
            return None, "", "no JSON object in the answer"
    complete = [c for c in candidates if len(c[0]) == len(dimensions)]
    found, reasons = complete[0] if complete else max(candidates, key=lambda c: len(c[0]))
    reasoning = "; ".join(reasons)
    missing = [name for name in dimensions if found.get(name) is None]
    if missing:
        return None, reasoning, f"no score for {', '.join(missing)}"
    scores = {}
    for name in dimensions:
        value = scale.value(found[name])
        if isinstance(value, str):
            return None, reasoning, f"{name}: {value}"
        scores[name] = value
    return scores, reasoning, ""


def rubric_messages(
    template: PromptTemplate, variables: dict[str, str], retry_note: str | None
) -> list[Message]:
    """A rubric's request: its system message, the rendered rubric, and on a retry a note
    that also makes it a different request, so the cache never returns the unusable answer."""
    messages = []
    if template.header.system:
        messages.append(Message(role="system", content=template.header.system.strip()))
    messages.append(Message(role="user", content=template.render(variables)))
    if retry_note:
        messages.append(Message(role="user", content=retry_note))
    return messages


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
