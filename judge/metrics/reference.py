"""Reference metrics: chrF and BLEU through sacrebleu, ROUGE-L through rouge-score.

Both libraries need care with Indic text. sacrebleu's flores101/flores200 tokenizers download
a SentencePiece model on first use, and its 13a tokenizer is English-minded, so BLEU here runs
with tokenize="none" over our own grapheme-safe words (`factory.textutil.words`, joined by
spaces: letters with their combining marks; digits and punctuation are dropped). chrF is
character-based and needs no tokenizer. rouge-score's default tokenizer keeps only [a-z0-9],
which makes every Hindi ROUGE 0; it gets the same grapheme-safe words, case-folded.

chrF computes each pair's n-gram statistics once and derives both the sentence scores and the
pooled corpus score from them, where calling sentence_chrf and corpus_chrf would extract them
twice (sacrebleu's statistics API; tests check both agree with its public functions).
"""

from collections.abc import Sequence
from importlib.metadata import version

from sacrebleu.metrics import BLEU, CHRF

from factory.textutil import nfc, words
from judge.metrics.core import Metric, Sample, Scores, register

WORDS_SIGNATURE = r"words:nfc+[\p{L}\p{M}]+"
NEEDS = frozenset({"completion", "reference"})


def _pairs(samples: Sequence[Sample]) -> tuple[list[str], list[str]]:
    return [nfc(s["completion"]) for s in samples], [nfc(s["reference"]) for s in samples]


def word_string(text: str) -> str:
    """Text as space-joined grapheme-safe words: what BLEU sees with tokenize='none'."""
    return " ".join(words(text))


def chrf_scores(hyps: Sequence[str], refs: Sequence[str]) -> tuple[list[float], float]:
    """Sentence chrF of each pair and the corpus chrF, from one statistics pass."""
    chrf = CHRF()
    stats = chrf._extract_corpus_statistics(hyps, [list(refs)])
    sentences = [chrf._aggregate_and_compute([s]).score for s in stats]
    return sentences, chrf._aggregate_and_compute(stats).score


def _chrf(samples: Sequence[Sample]) -> Scores:
    sentences, corpus = chrf_scores(*_pairs(samples))
    return Scores(list(sentences), corpus)


def _bleu(samples: Sequence[Sample]) -> Scores:
    hyps, refs = _pairs(samples)
    hyps, refs = [word_string(h) for h in hyps], [word_string(r) for r in refs]
    # effective_order: a short sentence with no 4-gram match is not scored 0 outright
    sentence = BLEU(tokenize="none", effective_order=True)
    per_sample = [sentence.sentence_score(h, [r]).score for h, r in zip(hyps, refs, strict=True)]
    corpus = BLEU(tokenize="none").corpus_score(hyps, [refs]).score
    return Scores(per_sample, corpus)


class WordTokenizer:
    """rouge-score's tokenizer interface: case-folded grapheme-safe words."""

    def tokenize(self, text: str) -> list[str]:
        return [w.casefold() for w in words(text)]


def _rouge_l(samples: Sequence[Sample]) -> Scores:
    # imported here: rouge-score imports nltk, a second of start-up for every `judge` command
    from rouge_score.rouge_scorer import RougeScorer

    scorer = RougeScorer(["rougeL"], tokenizer=WordTokenizer())
    return Scores(
        [scorer.score(s["reference"], s["completion"])["rougeL"].fmeasure for s in samples]
    )


def _sacrebleu_signature(metric: CHRF | BLEU) -> str:
    metric.corpus_score(["a"], [["a"]])  # sacrebleu knows nrefs only after a first call
    return str(metric.get_signature())


CHRF_METRIC = register(
    Metric(
        "chrf",
        True,
        NEEDS,
        "corpus",
        f"chrF2 0-100|{_sacrebleu_signature(CHRF())}|nfc",
        _chrf,
    )
)
BLEU_METRIC = register(
    Metric(
        "bleu",
        True,
        NEEDS,
        "corpus",
        f"BLEU 0-100|{_sacrebleu_signature(BLEU(tokenize='none'))}|{WORDS_SIGNATURE}"
        "|sentence:eff:yes",
        _bleu,
    )
)
ROUGE_L_METRIC = register(
    Metric(
        "rouge_l",
        True,
        NEEDS,
        "sample",
        f"ROUGE-L F1 0-1|{WORDS_SIGNATURE}+casefold|stem:no|rouge-score:{version('rouge-score')}",
        _rouge_l,
    )
)
