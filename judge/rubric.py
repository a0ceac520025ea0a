"""Rubrics: the judge prompt for one (prompt, completion) pair, and a tolerant, strict parser.

Tolerant of form (code fences, prose around the JSON, numbers written as strings), strict
about content: a missing dimension or a score outside 1-10 is a parse failure, never a
number. A failure is retried, then recorded as missing with the raw answer kept.
"""

import re
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


@dataclass(frozen=True)
class Judgement:
    scores: dict[str, int] | None  # None: the answer could not be parsed into valid scores
    reasoning: str
    problem: str  # why parsing failed ("" when it did not)


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
        obj = next(json_objects(answer), None)
        if obj is None:
            return Judgement(None, "", "no JSON object in the answer")
        scores = {}
        for name in self.dimensions:
            value = obj.get(name)
            if isinstance(value, str):
                value = value.strip()
                value = int(value) if re.fullmatch(r"\d+", value) else value
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 10:
                return Judgement(None, "", f"{name}: {value!r} is not an integer from 1 to 10")
            scores[name] = value
        return Judgement(scores, str(obj.get("reasoning", "")), "")
