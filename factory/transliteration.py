"""Romanized Hindi spellings of one word, grouped, and how consistently a text spells them.

Here, below both users, so that `factory stats` measures a whole Hinglish dataset's
transliteration consistency as the judge's metric (`judge.metrics.codemix`) does.
The cannot-link constraints come from the gold list (`factory/spellings.py`).

Transliteration consistency has no standard definition; ours: group the spellings of the same
romanized Hindi word, then score 1 minus the frequency-weighted mean normalized entropy of the
spelling choices within a group (1.0: the writer always spells a word the same way).
"""

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from functools import cache

import regex

from factory.spellings import Labels, conflict, shipped_constraints

# Romanized Hindi spelling. `spelling_form` removes the choices that never change a word;
# `spelling_distance` prices the ones that usually do not (a dropped vowel, an h, a glide,
# a final nasal); `grammatical_conflict` and the gold list's distinct lines (factory.
# spellings) keep apart what looks alike but is another word.
_GEMINATE_ASPIRATE = regex.compile(r"([bcdgjkpt])h?\1h")  # chch, cch, tth -> ch, th
_FINAL_E = regex.compile(r"(?:ey|ay|ei)$")  # mujhey, sabsay, mei -> mujhe, sabse, me
# inside a word, before a consonant (not a-e or a-o: sikhaenge, sikhaoge are causatives)
_INNER_E = regex.compile(r"(?:ai|ei|^ae)(?=[^aeiouy])")  # kaise/kese, hain/hein, aese/aise
_INNER_O = regex.compile(r"au(?=[^aeiou])")  # kaun/kon
_YO = regex.compile(r"yo(?=n|$)")  # kyon/kyun, kyonki/kyunki
_LONG_VOWEL = regex.compile(r"aa|ee|ii|oo|uu")
_DOUBLE = regex.compile(r"(.)\1+")
_LONG = {"aa": "a", "ee": "i", "ii": "i", "oo": "u", "uu": "u"}
VOWELS = frozenset("aeiou")
# The largest spelling distance between forms of one word: one cheap edit up to 4 letters
# (nhi/nahi, abi/abhi), two dropped vowels from 5 letters on (smjh/samajh, mtlb/matlab) but
# not a dropped vowel and an h (sara/sahara) or a nasal and an h (pakka/pankha).
MAX_COST_SHORT, SHORT_WORD = 0.5, 4
MAX_COST = 0.75
VOWEL_DROP = 0.375  # rha/raha: chat drops vowels more freely than anything else
VOWEL_SWAP = 0.75  # added to two opposite vowel drops in a row, making them a swap's 1.5
# Endings Hindi grammar marks, read from spelling forms. Spellings of one word share them all.
# Future (person, number, gender; a vowel before it is the causative): karega/karegi/karenge/
# karoge/karunga, sikhegi/sikhaegi.
_FUTURE = regex.compile(r"([aeiou]?)y?(unga|ungi|enge|engi|ega|egi|oge|ogi)$")
_INFINITIVE = regex.compile(r"n[aie]$")  # karna is not kara, bhejne is not bheje
_POLITE = regex.compile(r"iy?e$")  # bhejiye is not bheje
# The plural or honorific nasal -ein/-en on a stem (_plural_nasal): karein is not kare; but
# mein and the pronouns unhein/tumhein/hamein spell the same word with or without it.
# An a right before the ending (through a glide, past -t/-n) marks the causative: chalti/
# chalaati, samajhna/samjhana, dikhi/dikhai, mili/milayi; also bhi/bhai.
_CAUSATIVE = regex.compile(r"(a?)y?([tn]?)[aeiou]n?$")


@cache
def spelling_form(word: str) -> str:
    """The word without the romanization choices that never change it: case, q/k, z/j, w/v,
    ph/f, vowel length, doubled letters, -ey/-ay for -e, ai/ei for e and au for o inside a
    word, kyon for kyun."""
    w = word.casefold().replace("q", "k").replace("z", "j").replace("w", "v")
    w = _GEMINATE_ASPIRATE.sub(r"\1h", w.replace("ph", "f"))
    w = _INNER_O.sub("o", _INNER_E.sub("e", _FINAL_E.sub("e", w)))
    w = _LONG_VOWEL.sub(lambda m: _LONG[m[0]], _YO.sub("yu", w))
    return _DOUBLE.sub(r"\1", w)


def ending_vowel(form: str) -> str:
    """The final vowel, past a final nasal n ("" for a consonant): Hindi marks gender and
    number there (mera/meri/mere, ka/ki/ke), so spellings that differ in it are other words."""
    if len(form) > 1 and form[-1] == "n" and form[-2] in VOWELS:
        form = form[:-1]
    return form[-1] if len(form) > 1 and form[-1] in VOWELS else ""


def phonetic_key(form: str) -> str:
    """The bucket candidates must share: first letter, the consonants the spelling distance
    does not let go (all but h, y, v, n; r and d as one), and the ending vowel."""
    rest = "".join(c for c in form[1:] if c not in VOWELS and c not in "hyvn")
    return form[:1] + rest.replace("r", "d") + "|" + ending_vowel(form)


def grammar(form: str) -> tuple:
    """What the grammar marks at the end of a spelling form (see the patterns above)."""
    future = _FUTURE.search(form)
    return (
        ending_vowel(form),
        future.groups() if future else None,
        bool(_INFINITIVE.search(form)),
        bool(_POLITE.search(form)),
        _plural_nasal(form),
    )


def _plural_nasal(form: str) -> bool:
    """-ein/-en on a stem of two letters or more that is not a pronoun's (unh-, tumh-, ham-)."""
    if not form.endswith("en"):
        return False
    stem = form[:-2]
    return len(stem) >= 2 and not stem.endswith(("nh", "mh")) and stem not in ("ham", "hum")


def grammatical_conflict(a: str, b: str) -> bool:
    """Whether two spelling forms are different grammatical forms of a word: their grammar
    differs, or one has the causative a after a stem that the other lacks."""
    if grammar(a) != grammar(b):
        return True
    causative_a, causative_b = _CAUSATIVE.search(a), _CAUSATIVE.search(b)
    return bool(
        causative_a
        and causative_b
        and causative_a[1] != causative_b[1]
        and _has_syllable_stem(causative_a)
        and _has_syllable_stem(causative_b)
    )


def _has_syllable_stem(match: regex.Match) -> bool:
    """Whether the stem before a causative match (with its -t/-n when no a precedes) has a
    vowel of its own; otherwise the a is the stem's vowel (pata/pta, gaya/gya, nai/nahi)."""
    stem = match.string[: match.start()] + ("" if match[1] else match[2])
    return any(c in VOWELS for c in stem)


def _touches_h(w: str, i: int) -> bool:
    return (i + 1 < len(w) and w[i + 1] == "h") or (i >= 1 and w[i - 1] == "h")


def _breathy(w: str, i: int) -> bool:
    """Whether the vowel w[i] touches an h that follows a vowel: Hindi a sounds as e or o
    there, so pehle/pahle and bahut/bohot are one word."""
    return (i + 1 < len(w) and w[i + 1] == "h") or (
        i >= 2 and w[i - 1] == "h" and w[i - 2] in VOWELS
    )


def _drop_cost(w: str, i: int) -> float:
    """The price of w[i] missing from the other spelling."""
    c = w[i]
    if i == 0 or (c in VOWELS and i == len(w) - 1):
        return 2.0  # the first letter and the ending are never dropped
    between_vowels = i + 1 < len(w) and w[i - 1] in VOWELS and w[i + 1] in VOWELS
    if c in VOWELS:
        # between consonants: rha/raha, smjh/samajh; beside a vowel it changes the syllable
        # (bhai/bhi, tau/tu)
        beside_vowel = w[i - 1] in VOWELS or (i + 1 < len(w) and w[i + 1] in VOWELS)
        return 1.0 if beside_vowel else VOWEL_DROP
    if c == "h":
        # a breathy h between vowels (nai/nahi, chaiye/chahiye) or the aspiration of a voiced
        # stop, an affricate or s (abi/abhi, muje/mujhe, sayad/shayad) is often not written;
        # kh, th, ph and an h before a consonant are (kata/khata, saat/saath, kata/kahta)
        return 0.5 if between_vowels or w[i - 1] in "bdgjcs" else 1.0
    if c in "yv":
        return 0.5 if between_vowels else 1.0  # duniya/dunia, gaye/gae, huwa/hua
    if c == "n" and (i == len(w) - 1 or w[i + 1] not in VOWELS):
        return 0.5  # nahin/nahi, kyunki/kyuki
    return 1.0


def _swap_cost(a: str, i: int, b: str, j: int) -> float:
    """The price of a[i] written as b[j]."""
    x, y = a[i], b[j]
    if x == y:
        return 0.0
    pair = {x, y}
    if pair in ({"y", "i"}, {"v", "u"}):
        return 0.25  # kya/kia, hwa/hua
    if x in VOWELS and y in VOWELS:
        if _touches_h(a, i) and _touches_h(b, j) and (_breathy(a, i) or _breathy(b, j)):
            return 0.25  # both beside the h, one of them after a vowel: pehle/pahle, bhot
        # the short a is often written u (ekdam/ekdum, hamne/humne); other vowels are words
        return 0.75 if pair == {"a", "u"} else 1.5  # dekhna/dikhna, khula/khola
    if pair == {"d", "r"}:
        return 0.5  # the flap: ladka/larka, padhai/parhai
    return 1.5


def spelling_distance(a: str, b: str) -> float:
    """Weighted edit distance of two spelling forms (see _drop_cost and _swap_cost).

    A vowel dropped from one spelling right beside a vowel dropped from the other is a vowel
    written as another, so it costs what that swap costs (VOWEL_SWAP), not two cheap drops:
    khula/khola and dekhna/dikhna stay apart while rha/raha and smjh/samajh meet. Three
    running costs per cell: the last step was a swap or a consonant dropped, a vowel of a
    dropped, a vowel of b dropped.
    """
    inf = float("inf")
    # row[j] = (cost ending in a swap, ... in a vowel dropped from a, ... dropped from b)
    row = [(0.0, inf, inf)]
    for j in range(len(b)):
        row.append(_after_drop(row[j], _drop_cost(b, j), b[j] in VOWELS, side=2))
    for i in range(len(a)):
        previous = row
        row = [_after_drop(previous[0], _drop_cost(a, i), a[i] in VOWELS, side=1)]
        for j in range(len(b)):
            swap = min(previous[j]) + _swap_cost(a, i, b, j)
            from_a = _after_drop(previous[j + 1], _drop_cost(a, i), a[i] in VOWELS, side=1)
            from_b = _after_drop(row[j], _drop_cost(b, j), b[j] in VOWELS, side=2)
            row.append((min(swap, from_a[0], from_b[0]), from_a[1], from_b[2]))
    return min(row[-1])


def _after_drop(
    costs: tuple[float, float, float], drop: float, vowel: bool, side: int
) -> tuple[float, float, float]:
    """The running costs after dropping a letter of a (side 1) or of b (side 2)."""
    inf = float("inf")
    if not vowel:
        return (min(costs) + drop, inf, inf)
    other = 3 - side
    best = min(costs[0], costs[side], costs[other] + VOWEL_SWAP) + drop
    return (inf, best, inf) if side == 1 else (inf, inf, best)


def same_word(a: str, b: str) -> bool:
    """Whether two spelling forms can be one word: no grammatical conflict, and close."""
    if grammatical_conflict(a, b):
        return False
    short = max(len(a), len(b)) <= SHORT_WORD
    return spelling_distance(a, b) <= (MAX_COST_SHORT if short else MAX_COST)


def group_spellings(
    counts: Mapping[str, int], constraints: Mapping[str, Labels] | None = None
) -> dict[str, str]:
    """Spelling -> its group's name (the group's most frequent spelling).

    Within a phonetic-key bucket, spellings are taken most frequent first; each joins the first
    group whose founder it can be the same word as (`same_word`) and none of whose members it
    must stay apart from (`constraints`: the gold list's distinct lines, see
    factory.spellings; the shipped list by default), or founds one. Comparing with
    founders, not with any member, keeps chains from forming.
    """
    constraints = shipped_constraints() if constraints is None else constraints
    group: dict[str, str] = {}
    founders: dict[str, list[tuple[str, str, set]]] = {}  # key -> [(form, name, labels)]
    for spelling, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        form = spelling_form(spelling)
        labels = constraints.get(spelling, frozenset())
        bucket = founders.setdefault(phonetic_key(form), [])
        for founder_form, founder, members in bucket:
            if same_word(form, founder_form) and not conflict(labels, members):
                group[spelling] = founder
                members.update(labels)
                break
        else:
            bucket.append((form, spelling, set(labels)))
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
