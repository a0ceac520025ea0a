"""Throughput of the offline metrics: the Hinglish code-mixing metrics over 100,000 utterances,
and chrF over 10,000 story pairs against sacrebleu's own calls.

Utterances are synthetic: turns of tests/fixtures/corpus/hinglish.jsonl with their Hindi words
respelled at random among the spelling variants the word lists hold (nahi/nahin/nai...), a few
words from the Hindi and English lists inserted, so the tagger and the spelling groups see a
large vocabulary. Story pairs are the fixture stories (Hindi, Marathi, Bangla, English) against
copies with a tenth of their words dropped, repeated or swapped.

Code-mixing goal: 100,000 utterances (CMI, M-index, I-index, transliteration consistency, one
process) under 30 s on 2 cores. The spelling grouping behind transliteration consistency is
also measured on the gold list (factory/hinglish_spellings.txt): pairwise precision and
recall per section, with the shipped constraints, with the [dev] constraints only (so
[held-out] measures the rules on words they were not written for), and with the rules alone;
goal: precision >= 0.95 at recall >= 0.9. chrF baseline: what a caller of sacrebleu writes for
per-sample and corpus scores, sacrebleu.sentence_chrf for each pair then sacrebleu.corpus_chrf;
ours extracts the statistics once and derives both (the scores are checked equal).

    python bench/metrics.py
    python bench/metrics.py --utterances 20000 --pairs 2000
"""

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import sacrebleu

from factory.codemix import HI, tag_tokens
from factory.paths import VOCAB_DIR
from factory.spellings import SECTIONS, cannot_link, pair_scores, read_gold
from factory.transliteration import group_spellings
from factory.vocab import read_word_list
from judge.metrics import compute

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "corpus"
CODEMIX = ["cmi", "m_index", "i_index", "transliteration_consistency"]
GOAL_SECONDS = 30.0


def rows(language: str) -> list[dict]:
    lines = (CORPUS / f"{language}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line]


def make_utterances(n: int, rng: np.random.Generator) -> list[str]:
    turns = [m["content"] for row in rows("hinglish") for m in row["messages"]]
    hindi = read_word_list(VOCAB_DIR / "hinglish" / "hindi_words.txt")
    english = read_word_list(VOCAB_DIR / "hinglish" / "english_words.txt")
    groups = group_spellings(Counter(dict.fromkeys(hindi, 1)))
    variants: dict[str, list[str]] = {}
    for spelling, name in groups.items():
        variants.setdefault(name, []).append(spelling)
    utterances = []
    for turn in rng.choice(turns, n):
        out = []
        for word, tag in tag_tokens(turn):
            if tag == HI:
                spellings = variants[groups.get(word.casefold(), word.casefold())]
                word = spellings[rng.integers(len(spellings))]
            out.append(word)
        for _ in range(rng.integers(0, 4)):
            pool = hindi if rng.random() < 0.5 else english
            out.insert(rng.integers(len(out) + 1), pool[rng.integers(len(pool))])
        utterances.append(" ".join(out))
    return utterances


def perturb(text: str, rng: np.random.Generator) -> str:
    """Drop, repeat or swap about a tenth of the words."""
    words = text.split()
    out: list[str] = []
    for word in words:
        roll = rng.random()
        if roll < 0.04:
            continue
        out += [word, word] if roll < 0.07 else [word]
        if 0.07 <= roll < 0.10 and len(out) > 1:
            out[-1], out[-2] = out[-2], out[-1]
    return " ".join(out)


def bench_codemix(n: int, rng: np.random.Generator) -> None:
    utterances = make_utterances(n, rng)
    samples = [{"prompt": "", "completion": u, "language": "hinglish"} for u in utterances]
    words = sum(len(u.split()) for u in utterances)
    start = time.perf_counter()
    results = compute(CODEMIX, samples)
    seconds = time.perf_counter() - start
    print(f"code-mixing: {n:,} utterances ({words:,} words), {', '.join(CODEMIX)}")
    for name in CODEMIX:
        print(f"  {name:28s} corpus {results[name].corpus:.4f}")
    top = results["transliteration_consistency"].details["top_inconsistent_groups"][:5]
    print("  top inconsistent groups:")
    for g in top:
        print(f"    {g['group']:12s} {g['variants']}")
    print(
        f"  {seconds:.2f} s, {n / seconds:,.0f} utterances/s; goal {GOAL_SECONDS:.0f} s for "
        f"100,000: {'met' if seconds * 100_000 / n < GOAL_SECONDS else 'MISSED'} "
        f"({GOAL_SECONDS / (seconds * 100_000 / n):.1f}x under the limit)"
    )


def bench_spellings() -> None:
    gold = read_gold()
    counts = {}  # the first spelling of a variant line is the most frequent, as in a corpus
    for section in SECTIONS:
        for group in gold.variants[section]:
            counts.update({s: len(group) - rank for rank, s in enumerate(group)})
    counts = {w: counts.get(w, 1) for w in gold.words()}
    print(
        f"spelling groups on the gold list: {sum(map(len, gold.variants.values()))} variant "
        f"lines, {sum(map(len, gold.distinct.values()))} distinct lines; goal P >= 0.95, R >= 0.9"
    )
    for name, constraints in [
        ("shipped constraints", None),
        ("[dev] constraints only", cannot_link(gold, ["dev"])),
        ("rules alone", {}),
    ]:
        group = group_spellings(counts, constraints)
        cells = []
        for section in SECTIONS:
            scores = pair_scores(group, gold, section)
            cells.append(f"{section} P {scores.precision:.3f} R {scores.recall:.3f}")
        print(f"  {name:24s} " + ", ".join(cells))
    held_out = pair_scores(group_spellings(counts, cannot_link(gold, ["dev"])), gold, "held-out")
    print(f"  held-out words merged by the rules: {held_out.merged_distinct}")
    print(f"  held-out variants kept apart: {held_out.split_variants}")


def bench_chrf(n: int, rng: np.random.Generator) -> None:
    stories = [r["text"] for lang in ("hindi", "marathi", "bangla", "english") for r in rows(lang)]
    refs = [stories[i] for i in rng.integers(len(stories), size=n)]
    hyps = [perturb(r, rng) for r in refs]
    samples = [
        {"prompt": "", "completion": h, "reference": r, "language": ""}
        for h, r in zip(hyps, refs, strict=True)
    ]
    chars = sum(len(h) + len(r) for h, r in zip(hyps, refs, strict=True))

    start = time.perf_counter()
    ours = compute(["chrf"], samples)["chrf"]
    ours_s = time.perf_counter() - start

    start = time.perf_counter()
    baseline = [sacrebleu.sentence_chrf(h, [r]).score for h, r in zip(hyps, refs, strict=True)]
    baseline_corpus = sacrebleu.corpus_chrf(hyps, [refs]).score
    base_s = time.perf_counter() - start

    assert np.allclose(ours.per_sample, baseline) and np.isclose(ours.corpus, baseline_corpus)
    print(f"chrF: {n:,} story pairs ({chars / 1e6:.1f} M characters), corpus {ours.corpus:.2f}")
    print(f"  judge.metrics chrf (one statistics pass): {ours_s:.2f} s, {n / ours_s:,.0f} pairs/s")
    print(f"  sacrebleu sentence_chrf + corpus_chrf:    {base_s:.2f} s, {n / base_s:,.0f} pairs/s")
    print(f"  speed-up {base_s / ours_s:.2f}x (same scores)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    bench_spellings()
    bench_codemix(args.utterances, rng)
    bench_chrf(args.pairs, rng)


if __name__ == "__main__":
    main()
