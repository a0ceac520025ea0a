"""Diversity of a model's completions: distinct-n and self-BLEU.

Both count grapheme-safe words (`factory.textutil.words`), so a Devanagari word is one token.
Self-BLEU is each completion's BLEU against all the others as references (Zhu et al., Texygen):
high when the model keeps writing the same story; computed by `factory.diversity.self_bleu`
(the dataset statistics use it too), equal to sacrebleu's sentence_bleu (tests check it).
"""

from collections.abc import Sequence

import numpy as np

from factory.diversity import MAX_ORDER, ngrams, self_bleu
from factory.textutil import words
from judge.metrics.core import Metric, MetricSkipped, Sample, Scores, register
from judge.metrics.reference import WORDS_SIGNATURE

SELF_BLEU_MAX_SAMPLES = 200
SELF_BLEU_SEED = 0


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
