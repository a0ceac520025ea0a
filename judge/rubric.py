"""Rubrics: the judge prompt for one (prompt, completion) pair, read with factory's tolerant,
strict score reader (`factory/scores.py`): a missing dimension, or a score that is not an
integer from 1 to 10, is a parse failure, never a number: it is asked again, then recorded
as missing with the raw answer kept.
"""

from dataclasses import dataclass
from pathlib import Path

from factory.paths import TEMPLATES_DIR
from factory.prompts import Message
from factory.scores import LANGUAGE_NAMES, Scale, read_scores, rubric_messages
from factory.templates import PromptTemplate

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
RETRY_NUDGE = (
    "Your answer could not be used. Answer again with only the JSON object, every score an "
    "integer from 1 to 10."
)
SCALE = Scale(1, 10, integers=True)


@dataclass
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
        retry = f"{RETRY_NUDGE} (attempt {attempt})" if attempt > 1 else None
        return rubric_messages(self.template, variables, retry)

    def parse(self, answer: str) -> Judgement:
        """Scores per dimension from the judge's answer, or the problem with it."""
        scores, reasoning, problem = read_scores(answer, self.dimensions, SCALE)
        return Judgement(scores, reasoning, problem)  # type: ignore[arg-type]  # ints on SCALE
