"""Surface checks on a completion: is it in its language's script, and how long is it."""

from collections.abc import Sequence
from functools import cache

from factory.languages import get_language
from factory.textutil import script_share, words
from judge.metrics.core import Metric, Sample, Scores, register


@cache
def _script(language: str) -> str:
    return get_language(language).script


def _script_purity(samples: Sequence[Sample]) -> Scores:
    """Share of the completion's letters in the script its language must be written in."""
    return Scores([script_share(s["completion"], _script(s["language"])) for s in samples])


def _length(samples: Sequence[Sample]) -> Scores:
    return Scores([float(len(words(s["completion"]))) for s in samples])


SCRIPT_PURITY = register(
    Metric(
        "script_purity",
        True,
        frozenset({"completion", "language"}),
        "sample",
        r"script share 0-1|letters:\p{L}|script:factory.languages",
        _script_purity,
    )
)
LENGTH = register(
    Metric(
        "length_words",
        None,
        frozenset({"completion"}),
        "sample",
        r"words|nfc+[\p{L}\p{M}]+",
        _length,
    )
)
