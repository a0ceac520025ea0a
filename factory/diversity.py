"""How varied a dataset is, measured in one streaming pass over its kept texts.

A dataset can pass every validator and still teach a model little: a study of TinyStories found
59% of its stories open with "Once upon a time". `DatasetScan` reads each text once and keeps
bounded state, so a million documents need no more memory than a thousand:

- openings and endings (the first and last `OPENING_WORDS` words) and character names: the most
  frequent, counted exactly up to `TOP_CAPACITY` distinct values and by Misra-Gries beyond;
- distinct-1/2/3 (unique n-grams / n-grams over the dataset): 64-bit n-gram hashes kept exactly
  up to `EXACT_LIMIT` distinct values, then a HyperLogLog sketch (2^16 registers, ~0.4% error);
- self-BLEU of a seeded reservoir sample of `SELF_BLEU_SAMPLE` texts;
- vocabulary size at 1-2-5 checkpoints of the document count, and its Heaps' law exponent;
- words per text by slot value (feature, style, device), word-list coverage and never-used
  entries, and for Hinglish the code-mixing index per text and dataset-wide transliteration
  consistency (`factory.transliteration`).

Words are `factory.textutil.WORD` matches of NFC text, casefolded: Devanagari and Bengali words
stay whole. `self_bleu` here is also `judge`'s per-sample metric.
"""

import math
import random
import statistics
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import regex

from factory.textutil import WORD, nfc

OPENING_WORDS = 4  # "once upon a time"
TOP = 10  # openings, endings, names shown
TOP_CAPACITY = 10_000  # distinct values counted exactly before Misra-Gries drops rare ones
ORDERS = (1, 2, 3)
EXACT_LIMIT = 1 << 21  # distinct n-grams held exactly, per order (16 MiB of hashes)
HLL_BITS = 16  # HyperLogLog with 2^16 one-byte registers: 1.04 / 256 = 0.4% standard error
SELF_BLEU_SAMPLE = 200
SEED = 0
MAX_ORDER = 4  # self-BLEU's n-gram orders
CHUNK_WORDS = 200_000  # words hashed together
LENGTH_SLOTS = ("feature", "style", "device")  # slots whose values get a length row each
CMI_BINS = 10  # 0-5, 5-10, ..., 45-50

# How stories introduce a named character, per language: the name is group 1.
NAME_PATTERNS = {
    "english": regex.compile(r"\b(?:named|called)\s+(\p{Lu}\p{Ll}+)"),
    "hindi": regex.compile(r"([\p{L}\p{M}]+)\s+नाम\s+(?:का|की|के)\b"),
    "marathi": regex.compile(r"([\p{L}\p{M}]+)\s+(?:नावाचा|नावाची|नावाचे|नावाच्या)"),
    "bangla": regex.compile(r"([\p{L}\p{M}]+)\s+(?:নামে|নামের)"),
}

SPEAKER = regex.compile(r"^[AB]: ", regex.MULTILINE)

SIGNATURE = (
    f"words:[\\p{{L}}\\p{{M}}]+ nfc casefold|openings:{OPENING_WORDS} words"
    f"|distinct:exact to {EXACT_LIMIT} then HLL p{HLL_BITS}"
    f"|self-BLEU:sample {SELF_BLEU_SAMPLE} seed {SEED} max_order {MAX_ORDER} smooth exp"
)

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)
_PRIME = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer over an array: spreads n-gram codes over all 64 bits."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class TopCounter:
    """The most frequent values of a stream in bounded memory (Misra-Gries): at most
    `capacity` counters; a new value arriving when all are taken lowers every counter by one
    instead. Counts are exact while that never happened (`exact`); after, each is low by at
    most `drops` (<= n / (capacity + 1))."""

    def __init__(self, capacity: int = TOP_CAPACITY) -> None:
        self.capacity = capacity
        self.counts: dict[Hashable, int] = {}
        self.total = 0
        self.drops = 0

    def add(self, value: Hashable) -> None:
        self.total += 1
        counts = self.counts
        if value in counts:
            counts[value] += 1
        elif len(counts) < self.capacity:
            counts[value] = 1
        else:
            self.drops += 1
            for key in list(counts):
                if counts[key] == 1:
                    del counts[key]
                else:
                    counts[key] -= 1

    @property
    def exact(self) -> bool:
        return self.drops == 0

    def most_common(self, n: int) -> list[tuple[Hashable, int]]:
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:n]


def _unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values. (numpy 2.4's np.unique hashes uint64 arrays, ~40x slower than
    sorting them.)"""
    ordered = np.sort(values)
    return (
        ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))] if len(ordered) else ordered
    )


class DistinctCounter:
    """How many distinct 64-bit hashes a stream holds: exact (a sorted array, merged as it
    doubles) up to `limit` values, then a HyperLogLog sketch of 2^HLL_BITS registers."""

    def __init__(self, limit: int = EXACT_LIMIT) -> None:
        self.limit = limit
        self.seen = np.empty(0, np.uint64)
        self.pending: list[np.ndarray] = []
        self.pending_size = 0
        self.registers: np.ndarray | None = None

    def add(self, hashes: np.ndarray) -> None:
        if self.registers is not None:
            self._sketch(hashes)
            return
        chunk = _unique(hashes)
        self.pending.append(chunk)
        self.pending_size += len(chunk)
        if self.pending_size > max(len(self.seen), 1 << 16):
            self._merge()

    def _merge(self) -> None:
        self.seen = _unique(np.concatenate([self.seen, *self.pending]))
        self.pending, self.pending_size = [], 0
        if len(self.seen) > self.limit:
            self.registers = np.zeros(1 << HLL_BITS, np.uint8)
            self._sketch(self.seen)
            self.seen = np.empty(0, np.uint64)

    def _sketch(self, hashes: np.ndarray) -> None:
        rest_bits = 64 - HLL_BITS
        index = (hashes >> np.uint64(rest_bits)).astype(np.intp)
        rest = hashes & np.uint64((1 << rest_bits) - 1)
        _, bit_length = np.frexp(rest.astype(np.float64))  # exact: rest < 2^53
        rank = (rest_bits - bit_length + 1).astype(np.uint8)  # leading zeros + 1
        np.maximum.at(self.registers, index, rank)

    @property
    def exact(self) -> bool:
        return self.registers is None

    def count(self) -> float:
        if self.registers is None:
            self._merge()
        if self.registers is None:
            return float(len(self.seen))
        m = float(len(self.registers))
        alpha = 0.7213 / (1 + 1.079 / m)
        estimate = alpha * m * m / float(np.sum(np.ldexp(1.0, -self.registers.astype(np.int32))))
        zeros = int(np.count_nonzero(self.registers == 0))
        if estimate <= 2.5 * m and zeros:  # small range: linear counting is better
            estimate = m * math.log(m / zeros)
        return estimate


class Vocabulary(dict):
    """Word -> id, a new id for each new word (ids feed the n-gram hashes)."""

    def __missing__(self, word: str) -> int:
        self[word] = len(self)
        return self[word]


@dataclass(frozen=True)
class LengthRow:
    value: str
    texts: int
    median: float
    mean: float
    low: int  # 10th percentile
    high: int  # 90th percentile


@dataclass
class CodeMixing:
    """Hinglish: per-text CMI and the dataset's transliteration consistency."""

    texts: int
    mean: float
    median: float
    histogram: list[int]  # texts per CMI bin of width 50 / CMI_BINS
    consistency: float | None
    inconsistent: list[dict]  # the groups spelled most variously: group, entropy, variants


@dataclass
class DiversityStats:
    texts: int
    openings: list[tuple[str, int]]  # most frequent first-OPENING_WORDS-words, with counts
    endings: list[tuple[str, int]]
    names: list[tuple[str, int]]  # character names, texts that name each
    tops_exact: bool  # False when some rare values were dropped (counts low by <= top_error)
    top_error: int
    distinct: dict[int, float]  # order -> unique n-grams / n-grams
    distinct_exact: bool
    ngrams: dict[int, int]  # order -> n-grams counted
    self_bleu: float | None
    self_bleu_sample: int
    vocabulary: int
    growth: list[tuple[int, int]]  # (documents, vocabulary size) at 1-2-5 checkpoints
    heaps: float | None  # the exponent b of vocabulary ~ documents^b
    length_by: dict[str, list[LengthRow]] = field(default_factory=dict)
    codemix: CodeMixing | None = None
    opening_words: int = OPENING_WORDS
    signature: str = SIGNATURE

    def opening_share(self) -> float:
        """Share of texts that start with the most common opening."""
        return self.openings[0][1] / self.texts if self.openings and self.texts else 0.0


class DatasetScan:
    """Feed `add(text, variables)` once per kept text, in any number; `result()` at the end."""

    def __init__(self, language: str, hinglish: bool = False, nfc_texts: bool = False) -> None:
        self.language = language
        self.nfc_texts = nfc_texts  # texts known to be NFC already (the store's clean texts)
        # Hinglish texts are conversations as "A: ..." / "B: ..." lines: the labels are not
        # words of the conversation (every one would open with "a").
        self.names_pattern = NAME_PATTERNS.get(language)
        self.texts = 0
        self.openings = TopCounter()
        self.endings = TopCounter()
        self.names = TopCounter()
        self.vocabulary = Vocabulary()
        self.distinct = {n: DistinctCounter() for n in ORDERS}
        self.ngrams = dict.fromkeys(ORDERS, 0)
        self.growth: list[tuple[int, int]] = []
        self._next_checkpoint = 1
        self._ids: list[int] = []
        self._lengths: list[int] = []
        self.sample: list[str] = []
        self._rng = random.Random(SEED)
        self.by_slot: dict[str, dict[str, Counter[int]]] = {}
        self.hinglish = hinglish
        self.cmi_values: Counter[float] = Counter()
        self.hindi_words: Counter[str] = Counter()

    def add(self, text: str, variables: dict | None = None) -> int:
        """Count one text; returns its number of words."""
        text = text if self.nfc_texts else nfc(text)
        if self.hinglish:
            text = SPEAKER.sub("", text)
        words = WORD.findall(text.casefold())
        n = len(words)
        self.texts += 1
        if words:
            self.openings.add(" ".join(words[:OPENING_WORDS]))
            self.endings.add(" ".join(words[-OPENING_WORDS:]))
        self._names(text, variables or {})
        self._ids.extend(map(self.vocabulary.__getitem__, words))
        self._lengths.append(n)
        if len(self._ids) >= CHUNK_WORDS:
            self._hash_chunk()
        if self.texts == self._next_checkpoint:
            self.growth.append((self.texts, len(self.vocabulary)))
            self._next_checkpoint = _next_checkpoint(self.texts)
        self._sample(text)
        for slot in LENGTH_SLOTS:
            value = (variables or {}).get(slot)
            if value is not None:
                self.by_slot.setdefault(slot, {}).setdefault(str(value), Counter())[n] += 1
        if self.hinglish:
            self._codemix(text)
        return n

    def _names(self, text: str, variables: dict) -> None:
        """Characters a text names: "named X" and its like, and the name its prompt asked for
        (a `--diversify` slot) when the text uses it; each counted once per text."""
        found = self.names_pattern.findall(text) if self.names_pattern is not None else []
        asked = variables.get("name")
        if isinstance(asked, str) and asked and asked in text:
            found.append(asked)
        for name in dict.fromkeys(found):
            self.names.add(name)

    def _sample(self, text: str) -> None:
        """Reservoir sampling (Algorithm R): every text is in the sample with equal chance."""
        if len(self.sample) < SELF_BLEU_SAMPLE:
            self.sample.append(text)
            return
        slot = self._rng.randrange(self.texts)
        if slot < SELF_BLEU_SAMPLE:
            self.sample[slot] = text

    def _codemix(self, text: str) -> None:
        from factory.codemix import EN, HI, code_mixing_index, tag_tokens

        tagged = tag_tokens(text)
        tags = [tag for _, tag in tagged if tag in (HI, EN)]
        if tags:
            self.cmi_values[round(code_mixing_index(tags), 1)] += 1
        self.hindi_words.update(w.casefold() for w, tag in tagged if tag == HI)

    def _hash_chunk(self) -> None:
        """Hash the n-grams of the texts gathered so far (never across two texts)."""
        if not self._ids:
            self._lengths = []
            return
        ids = np.asarray(self._ids, dtype=np.uint64)
        lengths = np.asarray(self._lengths, dtype=np.int64)
        starts = np.cumsum(lengths) - lengths
        offset = np.arange(len(ids)) - np.repeat(starts, lengths)  # position inside its text
        length_at = np.repeat(lengths, lengths)
        for n in ORDERS:
            last = len(ids) - n + 1
            if last <= 0:
                continue
            code = ids[:last] + np.uint64(1)
            for k in range(1, n):
                code = code * _PRIME + ids[k : k + last] + np.uint64(1)
            valid = offset[:last] + n <= length_at[:last]
            hashes = _mix(code[valid] ^ np.uint64(n))
            self.ngrams[n] += len(hashes)
            self.distinct[n].add(hashes)
        self._ids, self._lengths = [], []

    def result(self) -> DiversityStats:
        self._hash_chunk()
        if self.texts and (not self.growth or self.growth[-1][0] != self.texts):
            self.growth.append((self.texts, len(self.vocabulary)))
        tops = (self.openings, self.endings, self.names)
        return DiversityStats(
            texts=self.texts,
            openings=self.openings.most_common(TOP),
            endings=self.endings.most_common(TOP),
            names=self.names.most_common(TOP),
            tops_exact=all(t.exact for t in tops),
            top_error=max(t.drops for t in tops),
            distinct={
                n: (self.distinct[n].count() / self.ngrams[n]) if self.ngrams[n] else 0.0
                for n in ORDERS
            },
            distinct_exact=all(d.exact for d in self.distinct.values()),
            ngrams=dict(self.ngrams),
            self_bleu=dataset_self_bleu(self.sample),
            self_bleu_sample=len(self.sample),
            vocabulary=len(self.vocabulary),
            growth=self.growth,
            heaps=heaps_exponent(self.growth),
            length_by={slot: _length_rows(values) for slot, values in self.by_slot.items()},
            codemix=self._codemix_result() if self.hinglish else None,
        )

    def _codemix_result(self) -> CodeMixing | None:
        from factory.transliteration import (
            consistency,
            group_spellings,
            normalized_entropy,
        )

        if not self.cmi_values:
            return None
        histogram = [0] * CMI_BINS
        for value, count in self.cmi_values.items():
            histogram[min(int(value / (50 / CMI_BINS)), CMI_BINS - 1)] += count
        values = sorted(self.cmi_values.elements())
        group = group_spellings(self.hindi_words)
        score, by_group = consistency(self.hindi_words.elements(), group)
        ranked = sorted(
            by_group.items(),
            key=lambda kv: (-sum(kv[1].values()) * normalized_entropy(kv[1].values()), kv[0]),
        )
        return CodeMixing(
            texts=len(values),
            mean=statistics.fmean(values),
            median=statistics.median(values),
            histogram=histogram,
            consistency=score,
            inconsistent=[
                {
                    "group": name,
                    "entropy": normalized_entropy(c.values()),
                    "variants": dict(c.most_common()),
                }
                for name, c in ranked[:TOP]
                if len(c) > 1
            ],
        )


def _next_checkpoint(n: int) -> int:
    """1, 2, 5, 10, 20, 50, ...: the document counts at which the vocabulary is recorded."""
    scale = 10 ** int(math.log10(n))
    for step in (1, 2, 5, 10):
        if step * scale > n:
            return step * scale
    return 10 * scale


def heaps_exponent(growth: Sequence[tuple[int, int]]) -> float | None:
    """b of Heaps' law, vocabulary ~ K * documents^b, fitted by least squares on log-log over
    the checkpoints from 10 documents on (None with fewer than three of them). Near 1: every
    text brings new words; near 0: the texts reuse one small vocabulary."""
    points = [(math.log(d), math.log(v)) for d, v in growth if d >= 10 and v > 0]
    if len(points) < 3:
        return None
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def _length_rows(values: dict[str, Counter[int]]) -> list[LengthRow]:
    rows = []
    for value, lengths in values.items():
        ordered = sorted(lengths.elements())
        rows.append(
            LengthRow(
                value,
                len(ordered),
                statistics.median(ordered),
                statistics.fmean(ordered),
                ordered[int(0.1 * (len(ordered) - 1))],
                ordered[int(0.9 * (len(ordered) - 1))],
            )
        )
    return sorted(rows, key=lambda r: (-r.texts, r.value))


# Self-BLEU ----------------------------------------------------------------------------------


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def _closest_length(length: int, others: np.ndarray) -> int:
    """sacrebleu's reference length: the closest to the hypothesis, the shorter on a tie."""
    diff = np.abs(others - length)
    return int(others[diff == diff.min()].min())


def self_bleu(texts: Sequence[str]) -> list[float]:
    """Sentence BLEU (sacrebleu settings: exp smoothing, effective order, tokenize none over
    grapheme-safe words) of each text against all the others (Zhu et al., Texygen).

    sacrebleu would re-extract every reference's n-grams for every hypothesis (quadratic);
    here each text's n-grams are counted once and, per n-gram, the two largest counts with
    their owners are kept, so "the best count among the other texts" is one lookup."""
    from sacrebleu.metrics import BLEU

    from factory.textutil import words

    tokens = [words(t) for t in texts]
    counts = [Counter(g for n in range(1, MAX_ORDER + 1) for g in ngrams(t, n)) for t in tokens]
    best: dict[tuple[str, ...], tuple[int, int, int]] = {}  # n-gram -> (top, its owner, second)
    for owner, counter in enumerate(counts):
        for gram, c in counter.items():
            top, top_owner, second = best.get(gram, (0, -1, 0))
            if c > top:
                best[gram] = (c, owner, top)
            elif c > second:
                best[gram] = (top, top_owner, c)
    lengths = np.array([len(t) for t in tokens])
    scores = []
    for i, counter in enumerate(counts):
        correct = [0] * MAX_ORDER
        for gram, c in counter.items():
            top, top_owner, second = best[gram]
            correct[len(gram) - 1] += min(c, second if top_owner == i else top)
        n_words = len(tokens[i])
        total = [max(0, n_words - n + 1) for n in range(1, MAX_ORDER + 1)]
        ref_len = _closest_length(n_words, np.delete(lengths, i))
        bleu = BLEU.compute_bleu(
            correct, total, n_words, ref_len, smooth_method="exp", effective_order=True
        )
        scores.append(bleu.score)
    return scores


def dataset_self_bleu(sample: Iterable[str]) -> float | None:
    """Mean self-BLEU (0-100) of a sample: high when the texts repeat each other's phrasing."""
    texts = [t for t in sample if t.strip()]
    if len(texts) < 2:
        return None
    return statistics.fmean(self_bleu(texts))
