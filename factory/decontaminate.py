"""Decontamination: a text that shares a long word n-gram with an evaluation prompt (or its
reference) is rejected as `contaminated`, naming the prompt, so a model is never trained on
the prompts it will be scored on.

The n-gram length follows GPT-3's decontamination (13 words by default,
`--contamination-ngram`); a prompt shorter than that must appear whole, and a prompt shorter
than `MIN_WORDS` is too generic to match ("Once upon a time") and is left out. Words are
`factory.textutil.words` (NFC, letters with their combining marks), casefolded, so punctuation,
spacing and case do not hide a copy and Indic words are never cut apart.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from factory.errors import KahaniError
from factory.evalsets import EvalPrompt, read_eval_prompts, shipped_eval_prompts
from factory.settings import CleanSettings
from factory.textutil import words

MIN_WORDS = 8


@dataclass(frozen=True)
class Contamination:
    prompt: EvalPrompt
    shared: str  # the words in common

    def detail(self) -> str:
        n = len(self.shared.split())
        return (
            f"evaluation prompt {self.prompt.id} ({self.prompt.where}): {n} words in common, "
            f'"{self.shared}"'
        )


class Decontaminator:
    """An index of the evaluation prompts' n-grams; `check(text)` finds one in a text."""

    def __init__(self, prompts: Iterable[EvalPrompt], n: int) -> None:
        self.n = n
        self.grams: dict[tuple[str, ...], EvalPrompt] = {}
        self.lengths: set[int] = set()  # n, and the lengths of prompts shorter than n
        self.prompts = 0
        self.too_short = 0
        for prompt in prompts:
            self.prompts += 1
            for text in (prompt.text, prompt.reference):
                if text:
                    self._index(text, prompt)
        self.vocabulary = {w for gram in self.grams for w in gram}

    def _index(self, text: str, prompt: EvalPrompt) -> None:
        tokens = [w.casefold() for w in words(text)]
        k = min(self.n, len(tokens))
        if k < min(self.n, MIN_WORDS):
            self.too_short += 1
            return
        self.lengths.add(k)
        for i in range(len(tokens) - k + 1):
            self.grams.setdefault(tuple(tokens[i : i + k]), prompt)

    def check(self, text: str) -> Contamination | None:
        """The first evaluation prompt the text shares an n-gram with, or None. Only runs of
        words that all occur in some prompt are looked at, so most texts cost one set lookup
        per word."""
        tokens = [w.casefold() for w in words(text)]
        start = 0
        for end in range(len(tokens) + 1):
            if end < len(tokens) and tokens[end] in self.vocabulary:
                continue
            if end - start >= min(self.lengths, default=end + 1):
                found = self._in_run(tokens, start, end)
                if found:
                    return found
            start = end + 1
        return None

    def _in_run(self, tokens: list[str], start: int, end: int) -> Contamination | None:
        for k in sorted(self.lengths, reverse=True):
            for i in range(start, end - k + 1):
                gram = tuple(tokens[i : i + k])
                if gram in self.grams:
                    return Contamination(self.grams[gram], " ".join(gram))
        return None


def check_eval_files(paths: Iterable[Path], language: str) -> None:
    """Read the --decontaminate files now: a bad file stops a clean before anything is written."""
    for path in paths:
        if not path.is_file():
            raise KahaniError(f"--decontaminate {path}: no such file")
        read_eval_prompts(path, language)


def decontaminator_for(settings: CleanSettings, language: str) -> Decontaminator | None:
    """The index for a clean: the shipped sets (unless turned off) and the files given, whose
    prompts get ids in the run's language. None when there is nothing to check against."""
    prompts = shipped_eval_prompts() if settings.decontaminate_shipped else []
    for path in settings.decontaminate:
        prompts.extend(read_eval_prompts(path, language))
    if not prompts:
        return None
    return Decontaminator(prompts, settings.contamination_ngram)
