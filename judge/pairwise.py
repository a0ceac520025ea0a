"""Pairwise judging: the prompt that shows a judge two texts for one prompt, and a tolerant
parser of its verdict.

The judge sees the texts as A and B, never which model wrote them. Each pair is asked in both
orders (`judge.pairwise_stats.combine_orders` turns the two verdicts into one outcome), so a
judge that favours a position shows up as inconsistent instead of as a preference.
Verdicts are read however judges write them: `{"winner": "A"}`, `"Assistant B"`, `[[A]]`
(MT-bench), `[[C]]` or `"tie"`, `"Winner: Continuation B"`, with the reason under any of the
usual keys; an answer naming no winner, or both, is a parse failure, never a guess.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from factory.paths import TEMPLATES_DIR
from factory.prompts import Message
from factory.scores import LANGUAGE_NAMES, REASON_KEYS, normalize_key, rubric_messages
from factory.templates import PromptTemplate
from factory.textutil import json_objects

Winner = Literal["A", "B", "tie"]
WINNER_KEYS = ("winner", "verdict", "better", "preferred", "preference", "choice", "answer")
RETRY_NUDGE = (
    'Your answer could not be used. Answer again with only the JSON object: {"winner": "A"}, '
    '{"winner": "B"} or {"winner": "tie"}, and a "reason".'
)
_TIE_WORDS = {"tie", "c", "draw", "equal", "both", "neither", "none", "same", "both_equal"}
# "A", "Assistant A", "Continuation B", "Reply A", "Story B", "Response A", "Output B", "[[A]]"
_NAMED = re.compile(
    r"(?:(?:assistant|continuation|reply|story|response|output|text|option|model)[\s_\-]*)?"
    r"\[*\(?([ab])\)?\]*",
    re.I,
)
_MENTION = re.compile(
    r"\b(?:assistant|continuation|reply|story|response|output|text|option|model)\s+([AB])\b", re.I
)
_BRACKETED = re.compile(r"\[\[\s*(A|B|C|tie)\s*\]\]", re.I)
_LINE = re.compile(r"[\s\-*#>•]*([A-Za-z][A-Za-z _\-]*?)[\s*]*[:=][\s*]*(.+?)[\s*.]*")


@dataclass(frozen=True)
class Verdict:
    winner: Winner | None  # None: no usable verdict in the answer
    reason: str
    problem: str  # why parsing failed ("" when it did not)


def winner_value(value: object) -> Winner | None:
    """A, B or tie from how judges write a verdict; None when it names neither."""
    if not isinstance(value, str):
        return None
    text = value.strip().strip("\"'`.!*").strip()
    if normalize_key(text) in _TIE_WORDS:
        return "tie"
    named = _NAMED.fullmatch(text)
    if named:
        return "A" if named[1].upper() == "A" else "B"
    bracketed = {m[1].upper() for m in _BRACKETED.finditer(text)}
    if len(bracketed) == 1:
        (mark,) = bracketed
        return mark if mark in ("A", "B") else "tie"
    mentioned = {m[1].upper() for m in _MENTION.finditer(text)}  # "Continuation B is better"
    if len(mentioned) == 1 and not bracketed:
        (mark,) = mentioned
        return mark
    return None


def _is_winner_key(key: str) -> bool:
    """`winner`, `final_verdict`, `better_continuation`, `preferred_reply`..."""
    return any(part in WINNER_KEYS for part in key.split("_"))


def parse_verdict(answer: str) -> Verdict:
    """The judge's verdict: a winner key in a JSON object (fenced ones first), else an MT-bench
    `[[A]]`/`[[B]]`/`[[C]]` mark, else a `Winner: ...` line, else an answer that is only
    the verdict."""
    for obj in json_objects(answer):
        keyed = {normalize_key(str(k)): v for k, v in obj.items()}
        for key, value in keyed.items():
            if _is_winner_key(key):
                winner = winner_value(value)
                if winner is None:
                    return Verdict(None, "", f"{key}: {value!r} names neither A, B nor a tie")
                reason = next((keyed[k] for k in REASON_KEYS if keyed.get(k)), "")
                return Verdict(winner, str(reason).strip(), "")
    marks = {m[1].upper() for m in _BRACKETED.finditer(answer)}
    if len(marks) > 1:
        return Verdict(None, "", f"the answer marks more than one verdict: {sorted(marks)}")
    if marks:
        (mark,) = marks
        reason = _BRACKETED.sub("", answer).strip()
        return Verdict(mark if mark in ("A", "B") else "tie", reason, "")
    for line in answer.splitlines():
        match = _LINE.fullmatch(line)
        if match and _is_winner_key(normalize_key(match[1])):
            winner = winner_value(match[2])
            if winner is not None:
                return Verdict(winner, answer.replace(line, "").strip(), "")
    winner = winner_value(answer)
    if winner is not None:
        return Verdict(winner, "", "")
    return Verdict(None, "", "no verdict (A, B or tie) in the answer")


class PairwiseRubric:
    """The pairwise prompt for a kind of text (`templates/judge/pairwise_<kind>.j2`, variables
    prompt, completion_a, completion_b, language) and its verdict parser."""

    def __init__(self, kind: str, language: str, path: Path | None = None) -> None:
        self.kind = kind
        self.language = language
        self.template = PromptTemplate(path or TEMPLATES_DIR / "judge" / f"pairwise_{kind}.j2")

    def messages(
        self, prompt: str, completion_a: str, completion_b: str, attempt: int = 1
    ) -> list[Message]:
        """The judge's request: the prompt and the two texts, as A and B."""
        variables = {
            "prompt": prompt,
            "completion_a": completion_a,
            "completion_b": completion_b,
            "language": LANGUAGE_NAMES.get(self.language, self.language),
        }
        retry = f"{RETRY_NUDGE} (attempt {attempt})" if attempt > 1 else None
        return rubric_messages(self.template, variables, retry)

    def parse(self, answer: str) -> Verdict:
        return parse_verdict(answer)
