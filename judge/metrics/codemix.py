"""Hinglish metrics from token-level language tags: CMI, M-index, I-index, and transliteration
consistency.

Tags come from `factory.codemix.tag_tokens` (word lists in `vocab_lists/hinglish/`). Words
tagged ambiguous or unknown count as neither language, so every metric here is over the hi and
en tokens only; where a text has too few of them to define a value the value is None (left out
of the mean), not 0. A text is tagged once and shared by all four metrics.

Transliteration consistency (`factory.transliteration`, shared with `factory stats`) has no
standard definition; ours: group the spellings of the same romanized Hindi word, then score 1
minus the frequency-weighted mean normalized entropy of the spelling choices within a group
(1.0: the writer always spells a word the same way).
"""

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from itertools import pairwise

from factory.codemix import EN, HI, code_mixing_index, tag_tokens
from factory.spellings import GOLD_PATH, gold_hash
from factory.transliteration import (
    MAX_COST,
    MAX_COST_SHORT,
    SHORT_WORD,
    consistency,
    group_spellings,
    normalized_entropy,
    phonetic_key,
    spelling_form,
)
from judge.metrics.core import Metric, Sample, Scores, register

HINGLISH = frozenset({"hinglish"})
TOP_GROUPS = 10


@lru_cache(maxsize=1)
def _tagged(texts: tuple[str, ...]) -> tuple[tuple[tuple[str, str], ...], ...]:
    """(word, tag) per word per text, memoized for the few metrics run on one text list."""
    return tuple(tuple(tag_tokens(t)) for t in texts)


def _language_tags(tagged: Iterable[tuple[str, str]]) -> list[str]:
    return [tag for _, tag in tagged if tag in (HI, EN)]


def cmi(tags: Sequence[str]) -> float | None:
    """Das & Gambäck's Code-Mixing Index (0 to 50) over hi/en tags; None with none of them."""
    return code_mixing_index(list(tags)) if tags else None


def m_index(tags: Sequence[str]) -> float | None:
    """Barnett et al.'s M-index for k = 2 languages: (1 - sum p_j^2) / ((k - 1) sum p_j^2),
    0 for one language, 1 for an even split."""
    if not tags:
        return None
    hi = sum(1 for t in tags if t == HI) / len(tags)
    squares = hi**2 + (1 - hi) ** 2
    return (1 - squares) / squares


def i_index(tags: Sequence[str]) -> float | None:
    """Guzmán et al.'s I-index: language switches between adjacent hi/en tokens (ambiguous and
    unknown tokens skipped) over the possible switch points; None below two tokens."""
    if len(tags) < 2:
        return None
    return sum(a != b for a, b in pairwise(tags)) / (len(tags) - 1)


def _hindi_words(tagged: Iterable[tuple[str, str]]) -> list[str]:
    return [w.casefold() for w, tag in tagged if tag == HI]


def _consistency_metric(samples: Sequence[Sample]) -> Scores:
    per_text = [_hindi_words(t) for t in _tagged(tuple(s["completion"] for s in samples))]
    counts = Counter(w for ws in per_text for w in ws)
    group = group_spellings(counts)
    corpus, by_group = consistency(counts.elements(), group)
    ranked = sorted(
        by_group.items(),
        key=lambda kv: (-sum(kv[1].values()) * normalized_entropy(kv[1].values()), kv[0]),
    )
    top = [
        {"group": name, "key": phonetic_key(spelling_form(name)),
         "entropy": normalized_entropy(c.values()), "variants": dict(c.most_common())}
        for name, c in ranked[:TOP_GROUPS]
        if len(c) > 1
    ]  # fmt: skip
    per_sample = [consistency(ws, group)[0] for ws in per_text]
    return Scores(per_sample, corpus, {"top_inconsistent_groups": top})


def _per_text(index: Callable[[Sequence[str]], float | None]) -> Callable[..., Scores]:
    def fn(samples: Sequence[Sample]) -> Scores:
        tagged = _tagged(tuple(s["completion"] for s in samples))
        return Scores([index(_language_tags(t)) for t in tagged])

    return fn


TAGS = "tags:factory.codemix.tag_tokens(vocab_lists/hinglish)|over:hi+en tokens"
NEEDS = frozenset({"completion"})
CMI = register(Metric("cmi", None, NEEDS, "sample", f"CMI 0-50|{TAGS}", _per_text(cmi), HINGLISH))
M_INDEX = register(
    Metric("m_index", None, NEEDS, "sample", f"M-index k=2|{TAGS}", _per_text(m_index), HINGLISH)
)
I_INDEX = register(
    Metric("i_index", None, NEEDS, "sample", f"I-index|{TAGS}", _per_text(i_index), HINGLISH)
)
TRANSLITERATION_CONSISTENCY = register(
    Metric(
        "transliteration_consistency",
        True,
        NEEDS,
        "corpus",
        f"1-mean normalized spelling entropy|{TAGS}|hi words|key:skeleton+ending vowel"
        f"|founder weighted distance<={MAX_COST_SHORT}(<={SHORT_WORD} letters)/{MAX_COST}"
        f"|grammatical endings"
        f"|cannot-link:{GOLD_PATH.name}@{gold_hash()}",
        _consistency_metric,
        HINGLISH,
    )
)
