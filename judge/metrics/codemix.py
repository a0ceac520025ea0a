"""Hinglish metrics from token-level language tags: CMI, M-index, I-index, and transliteration
consistency.

Tags come from `factory.codemix.tag_tokens` (word lists in `vocab_lists/hinglish/`). Words
tagged ambiguous or unknown count as neither language, so every metric here is over the hi and
en tokens only; where a text has too few of them to define a value the value is None (left out
of the mean), not 0. A text is tagged once and shared by all four metrics.

Transliteration consistency has no standard definition; ours: group the spellings of the same
romanized Hindi word, then score 1 minus the frequency-weighted mean normalized entropy of the
spelling choices within a group (1.0: the writer always spells a word the same way).
"""

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from functools import cache, lru_cache
from itertools import pairwise

import regex

from factory.codemix import EN, HI, code_mixing_index, tag_tokens
from judge.metrics.core import Metric, Sample, Scores, register

HINGLISH = frozenset({"hinglish"})
TOP_GROUPS = 10
# Largest Levenshtein distance, over the longer length, between the spelling rules' outputs of
# two words of one phonetic key. The rules already make nahi/nahin/nai, kyun/kyu/kyon, hai/hain
# or accha/acha/achha identical; 0.2 lets one more edit through only in words of 5+ letters
# (dhoondta/dhundta), where 1/3 would merge pal/pul and meri/mere, different words.
MAX_DISTANCE = 0.2


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


# Spelling rules for romanized Hindi, in order. Aspirated consonants become one symbol each
# (uppercase), so accha/achha/acha and kuch/kuchh meet while bh/b, kh/k stay apart (baje, bheje).
ASPIRATES = {"bh": "B", "ch": "C", "dh": "D", "gh": "G", "jh": "J", "kh": "K", "ph": "f",
             "sh": "S", "th": "T"}  # fmt: skip
_ASPIRATE = regex.compile("|".join(ASPIRATES))
_REPEATED_ASPIRATION = regex.compile(r"(?<=[BCDGJKTfS])h")  # chh, dhh
_GEMINATE_ASPIRATE = regex.compile(r"[bcdgjkt](?=[BCDGJKT])")  # cch -> ch
_BREATHY_H = regex.compile(r"(?<=[aeiou])h")  # nahi/nai, bahut/baut (not a first letter)
_INNER_AU = regex.compile(r"au(?!$)")  # kaun/kon, bahut (baut)/bohot; not tau/toh
_GLIDE_Y = regex.compile(r"(?<=[^aeiou])y(?=[aeiou])")  # kya/kia, pyar/piar
_FINAL_NASAL = regex.compile(r"(?<=[aeiou][aeiou])n$")  # nahin/nahi, hain/hai, kyun/kyu
_FINAL_O = regex.compile(r"(?<=[aeiou])o$")  # kyo/kyu (after a vowel only: bolo is not bolu)
_DOUBLE = regex.compile(r"(.)\1+")
VOWELS = frozenset("aeiou")


@cache
def spelling_form(word: str) -> str:
    """The word with the romanization choices that do not change it removed: vowel length,
    doubled letters, a silent or breathy h, w/v, z/j, q/k, a glide y, a final nasal n."""
    w = word.casefold().replace("w", "v").replace("z", "j").replace("q", "k")
    w = _ASPIRATE.sub(lambda m: ASPIRATES[m[0]], w)
    w = _GEMINATE_ASPIRATE.sub("", _REPEATED_ASPIRATION.sub("", w))
    w = w.replace("aa", "a").replace("ee", "i").replace("oo", "u")
    w = w[:1] + _BREATHY_H.sub("", w[1:])
    w = _GLIDE_Y.sub("i", _INNER_AU.sub("o", w))
    w = _FINAL_O.sub("u", _FINAL_NASAL.sub("", w))
    return _DOUBLE.sub(r"\1", w)


def phonetic_key(form: str) -> str:
    """First letter, consonant skeleton, final vowel: the bucket candidates must share."""
    final = form[-1] if len(form) > 1 and form[-1] in VOWELS else ""
    return form[:1] + "".join(c for c in form[1:] if c not in VOWELS) + final


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insert, delete, substitute), one row at a time."""
    if len(a) < len(b):
        a, b = b, a
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (ca != cb))
    return row[-1]


def group_spellings(counts: Counter[str]) -> dict[str, str]:
    """Spelling -> its group's name (the group's most frequent spelling).

    Within a phonetic-key bucket, spellings are taken most frequent first; each joins the first
    group whose founder's spelling form is within MAX_DISTANCE, or founds one. Comparing with
    founders, not with any member, keeps chains (pata, patta, peeta, pita) from forming.
    """
    group: dict[str, str] = {}
    founders: dict[str, list[tuple[str, str]]] = {}  # key -> [(founder form, founder)]
    for spelling, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        form = spelling_form(spelling)
        bucket = founders.setdefault(phonetic_key(form), [])
        for founder_form, founder in bucket:
            distance = levenshtein(form, founder_form)
            if distance <= MAX_DISTANCE * max(len(form), len(founder_form)):
                group[spelling] = founder
                break
        else:
            bucket.append((form, spelling))
            group[spelling] = spelling
    return group


def normalized_entropy(counts: Iterable[int]) -> float:
    """Entropy of a spelling distribution over log(number of spellings): 0 for one spelling,
    1 for spellings used equally often."""
    counts = list(counts)
    if len(counts) < 2:
        return 0.0
    total = sum(counts)
    return -sum(c / total * math.log(c / total) for c in counts) / math.log(len(counts))


def consistency(words: Iterable[str], group: dict[str, str]) -> tuple[float | None, dict]:
    """1 - mean normalized entropy of spellings within groups, groups weighted by how often
    they occur (a word spelled one way counts as a consistent group). Also returns the
    spelling counts per group."""
    by_group: dict[str, Counter[str]] = {}
    for w in words:
        by_group.setdefault(group[w], Counter())[w] += 1
    total = sum(sum(c.values()) for c in by_group.values())
    if not total:
        return None, by_group
    weighted = sum(sum(c.values()) * normalized_entropy(c.values()) for c in by_group.values())
    return 1 - weighted / total, by_group


def _hindi_words(tagged: Iterable[tuple[str, str]]) -> list[str]:
    # hai/hain are singular/plural in Hindi grammar, not spellings of one word; the issue lists
    # them as a variant pair and writers do swap them freely, so the rules follow the issue.
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
        f"1-mean normalized spelling entropy|{TAGS}|hi words|key:skeleton+final vowel"
        f"|founder levenshtein<={MAX_DISTANCE}",
        _consistency_metric,
        HINGLISH,
    )
)
