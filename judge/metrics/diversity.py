"""Diversity of a model's completions: distinct-n and self-BLEU.

Both count grapheme-safe words (`factory.textutil.words`), so a Devanagari word is one token.
Self-BLEU is each completion's BLEU against all the others as references (Zhu et al., Texygen):
high when the model keeps writing the same story. sacrebleu would re-extract every reference's
n-grams for every hypothesis (quadratic); here each text's n-grams are counted once and, per
n-gram, the two largest counts with their owners are kept, so "the best count among the other
texts" is one lookup. The numbers equal sacrebleu's sentence_bleu (tests check it).
"""

from collections import Counter
from collections.abc import Sequence

import numpy as np
from sacrebleu.metrics import BLEU

from factory.textutil import words
from judge.metrics.core import Metric, MetricSkipped, Sample, Scores, register
from judge.metrics.reference import WORDS_SIGNATURE

MAX_ORDER = 4
SELF_BLEU_MAX_SAMPLES = 200
SELF_BLEU_SEED = 0


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: Sequence[str], n: int) -> tuple[list[float | None], float | None]:
    """Unique n-grams / n-grams, per text and over the corpus (n-grams never cross texts);
    None where there is no n-gram to count."""
    per_text: list[float | None] = []
    corpus: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        grams = ngrams([w.casefold() for w in words(text)], n)
        per_text.append(len(set(grams)) / len(grams) if grams else None)
        corpus.update(grams)
        total += len(grams)
    return per_text, (len(corpus) / total if total else None)


def _distinct(n: int) -> Metric:
    def fn(samples: Sequence[Sample]) -> Scores:
        per_text, corpus = distinct_n([s["completion"] for s in samples], n)
        return Scores(per_text, corpus)

    return Metric(
        f"distinct_{n}",
        True,
        frozenset({"completion"}),
        "corpus",
        f"distinct-{n}|{WORDS_SIGNATURE}+casefold|corpus:unique/total",
        fn,
    )


def _closest_length(length: int, others: np.ndarray) -> int:
    """sacrebleu's reference length: the closest to the hypothesis, the shorter on a tie."""
    diff = np.abs(others - length)
    return int(others[diff == diff.min()].min())


def self_bleu(texts: Sequence[str]) -> list[float]:
    """Sentence BLEU (sacrebleu settings: exp smoothing, effective order, tokenize none over
    grapheme-safe words) of each text against all the others."""
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


def _self_bleu(samples: Sequence[Sample]) -> Scores:
    if len(samples) < 2:
        raise MetricSkipped("self-BLEU needs at least 2 completions")
    chosen = range(len(samples))
    if len(samples) > SELF_BLEU_MAX_SAMPLES:
        rng = np.random.default_rng(SELF_BLEU_SEED)
        chosen = sorted(rng.choice(len(samples), SELF_BLEU_MAX_SAMPLES, replace=False).tolist())
    scores = self_bleu([samples[i]["completion"] for i in chosen])
    per_sample: list[float | None] = [None] * len(samples)
    for i, score in zip(chosen, scores, strict=True):
        per_sample[i] = score
    return Scores(per_sample, float(np.mean(scores)))


DISTINCT_1 = register(_distinct(1))
DISTINCT_2 = register(_distinct(2))
SELF_BLEU = register(
    Metric(
        "self_bleu",
        False,
        frozenset({"completion"}),
        "corpus",
        f"self-BLEU 0-100|tok:none|{WORDS_SIGNATURE}|smooth:exp|eff:yes|max_order:{MAX_ORDER}"
        f"|sample:{SELF_BLEU_MAX_SAMPLES}|seed:{SELF_BLEU_SEED}",
        _self_bleu,
    )
)
