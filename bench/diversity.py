"""Dataset diversity in one streaming pass (`factory.diversity.DatasetScan`, what `factory stats`
runs) against the naive way, side by side in one run.

The baseline, "naive", loads every text, tokenizes it once, and then computes each statistic on
its own pass over the token lists: a Counter of every opening and ending, Python sets of every
word 1-, 2- and 3-gram for distinct-n, a vocabulary set with its size at the same checkpoints,
and self-BLEU on a random sample of the same size. It is exact; ours keeps bounded state (top
counters, 64-bit n-gram hashes exact up to 2^21 per order and a HyperLogLog sketch beyond, a
reservoir sample), so the output also shows how far its numbers are from the exact ones.

The corpus is synthetic Devanagari (words with vowel signs, conjuncts and nuktas, drawn with
Zipf-like weights from a 200,000-word vocabulary, so the vocabulary keeps growing), 120-180
words a document, 30% opening with the same four words; its vocabulary is made once, before
the approaches run. Each approach runs in a fresh forked process: its time excludes making the
documents, its peak memory is the process's peak RSS above what it held when it started (the
naive approach's includes holding every text, which is what it needs; ours makes the texts a
chunk at a time, as it reads them from the store). Both take the texts as NFC, as the store
holds them.

    python bench/diversity.py          # 100,000 documents both ways, then 1,000,000 ours
    python bench/diversity.py --docs 20000 --scale 0
"""

import argparse
import multiprocessing
import random
import resource
import statistics
import time
from collections import Counter
from collections.abc import Iterator

import numpy as np
from devanagari_corpus import make_vocab

from factory import diversity
from factory.diversity import DatasetScan
from factory.textutil import WORD, nfc

OPENING = "एक समय की बात"
CHUNK = 5000


VOCAB: np.ndarray | None = None  # made once in the parent; the forked children share it


def corpus(n: int, seed: int = 0) -> Iterator[list[str]]:
    """n NFC documents (as the store keeps them), CHUNK at a time, the same for every caller
    with the same seed."""
    global VOCAB
    if VOCAB is None:
        words = make_vocab(np.random.default_rng(seed), 200_000, max_syllables=4)
        VOCAB = np.array([nfc(w) for w in words])
    vocab = VOCAB
    rng = np.random.default_rng(seed + 1)
    weights = 1.0 / (np.arange(len(vocab)) + 10.0)
    weights /= weights.sum()
    made = 0
    while made < n:
        size = min(CHUNK, n - made)
        lengths = rng.integers(120, 181, size=size)
        drawn = rng.choice(vocab, size=int(lengths.sum()), p=weights)
        starts = np.cumsum(lengths) - lengths
        opens = rng.random(size) < 0.3
        chunk = []
        for i in range(size):
            words = drawn[starts[i] : starts[i] + lengths[i]]
            text = " ".join(words)
            chunk.append(f"{OPENING} {text}।" if opens[i] else f"{text}।")
        made += size
        yield chunk


def ours(chunks: Iterator[list[str]]) -> dict:
    scan = DatasetScan("hindi", nfc_texts=True)  # as `factory stats` reads the store
    seconds = 0.0
    for chunk in chunks:
        started = time.perf_counter()
        for text in chunk:
            scan.add(text)
        seconds += time.perf_counter() - started
    started = time.perf_counter()
    result = scan.result()
    seconds += time.perf_counter() - started
    return {
        "seconds": seconds,
        "openings": result.openings[:3],
        "distinct": result.distinct,
        "vocabulary": result.vocabulary,
        "growth": result.growth,
        "self_bleu": result.self_bleu,
    }


def naive(chunks: Iterator[list[str]]) -> dict:
    texts = [text for chunk in chunks for text in chunk]  # "load every text"
    started = time.perf_counter()
    tokens = [WORD.findall(t.casefold()) for t in texts]
    openings = Counter(" ".join(t[:4]) for t in tokens)
    Counter(" ".join(t[-4:]) for t in tokens)  # endings
    distinct = {}
    for order in diversity.ORDERS:
        grams = set()
        total = 0
        for t in tokens:
            grams.update(zip(*(t[k:] for k in range(order)), strict=False))
            total += max(0, len(t) - order + 1)
        distinct[order] = len(grams) / total
        del grams
    vocabulary: set[str] = set()
    growth, checkpoint = [], 1
    for i, t in enumerate(tokens, start=1):
        vocabulary.update(t)
        if i == checkpoint:
            growth.append((i, len(vocabulary)))
            checkpoint = diversity._next_checkpoint(i)
    statistics.median(len(t) for t in tokens)
    sample = random.Random(0).sample(texts, min(diversity.SELF_BLEU_SAMPLE, len(texts)))
    self_bleu = diversity.dataset_self_bleu(sample)
    return {
        "seconds": time.perf_counter() - started,
        "openings": openings.most_common(3),
        "distinct": distinct,
        "vocabulary": len(vocabulary),
        "growth": growth,
        "self_bleu": self_bleu,
    }


def _child(approach: str, n: int, pipe) -> None:
    chunks = corpus(n)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {"ours": ours, "naive": naive}[approach](chunks)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    result["peak_mib"] = (peak - before) / 1024
    pipe.send(result)


def measure(approach: str, n: int) -> dict:
    """Run one approach in a fresh forked process (so peaks do not mix)."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(approach, n, send))
    process.start()
    result = receive.recv()
    process.join()
    return result


def show(name: str, n: int, r: dict) -> None:
    distinct = ", ".join(f"{k}: {v:.4f}" for k, v in r["distinct"].items())
    print(
        f"  {name:<6} {r['seconds']:8.1f} s  {n / r['seconds']:9,.0f} docs/s  "
        f"peak +{r['peak_mib']:7,.0f} MiB  vocabulary {r['vocabulary']:,}  distinct {distinct}  "
        f"self-BLEU {r['self_bleu']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000, help="both approaches")
    parser.add_argument("--scale", type=int, default=1_000_000, help="ours only (0: skip)")
    args = parser.parse_args()

    next(corpus(1))  # the synthetic vocabulary, made once before the children fork
    print(f"{args.docs:,} documents")
    mine, theirs = measure("ours", args.docs), measure("naive", args.docs)
    show("ours", args.docs, mine)
    show("naive", args.docs, theirs)
    print(
        f"  speed-up {theirs['seconds'] / mine['seconds']:.1f}x, "
        f"peak memory {theirs['peak_mib'] / max(mine['peak_mib'], 1):.1f}x lower"
    )
    errors = {k: mine["distinct"][k] / theirs["distinct"][k] - 1 for k in theirs["distinct"]}
    print(
        "  ours vs exact: distinct-n "
        + ", ".join(f"{k}: {e:+.2%}" for k, e in errors.items())
        + f"; top opening: ours {mine['openings'][0]}, exact {theirs['openings'][0]}"
        + f"; vocabulary growth equal: {mine['growth'] == theirs['growth']}"
    )
    if args.scale:
        print(f"{args.scale:,} documents, ours only")
        show("ours", args.scale, measure("ours", args.scale))


if __name__ == "__main__":
    main()
