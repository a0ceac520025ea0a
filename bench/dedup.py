"""Near-duplicate removal: factory.dedup against datasketch MinHash + MinHashLSH, in one run.

The corpus is synthetic Devanagari: a vocabulary of a few thousand words with vowel signs,
viramas (conjuncts) and nuktas, documents of ~150 words drawn from it with Zipf-like weights,
and 10% planted near-duplicates (copies with a few words substituted, inserted or deleted).
A planted copy is a positive only if its true shingle Jaccard with its source reaches the
threshold; a removed document that is not a positive counts against precision.

Both sides use the same grapheme-safe tokens and word 3-gram shingles, num_perm and threshold
(datasketch's bands and rows are 9 x 13; ours lean to recall, 16 x 8, as candidates are
verified). datasketch runs its fastest documented path (`MinHash.update_batch`, default
scheme) with the usual `query` then `insert` loop, which does not verify candidates; its tokens
come from `factory.dedup.tokens` (NFC of the whole text, then the regex), while ours memoize
normalization per word, a part of the speed-up the output shows separately. Ours is timed in
one process and with 2 worker processes hashing; each run starts with an empty word cache.

    pip install datasketch          # the baseline; not a kahani dependency
    python bench/dedup.py           # 200,000 documents
    python bench/dedup.py --docs 20000
"""

import argparse
import sys
import time
import tracemalloc
from collections.abc import Callable
from contextlib import nullcontext
from multiprocessing import Pool

from devanagari_corpus import make_corpus

from factory import dedup
from factory.dedup import Deduplicator, jaccard, shingles, tokens

try:
    from datasketch import MinHash, MinHashLSH
except ImportError:
    sys.exit("bench/dedup.py compares against datasketch: pip install datasketch")


def score(removed: set[int], positives: set[int]) -> tuple[float, float]:
    tp = len(removed & positives)
    return tp / max(len(positives), 1), tp / max(len(removed), 1)


def run_kahani(texts: list[str], threshold: float, num_perm: int, processes: int) -> set[int]:
    """Deduplicate in order; with `processes` > 1, fingerprints are computed in worker
    processes while the index is still built in order here, so the result is the same."""
    dedup = Deduplicator(threshold, num_perm)
    with Pool(processes) if processes > 1 else nullcontext() as pool:
        fingerprint = dedup.hasher.fingerprint
        fps = pool.imap(fingerprint, texts, chunksize=256) if pool else map(fingerprint, texts)
        seen = [dedup.add_fingerprint(str(i), fp) for i, fp in enumerate(fps)]
    return {i for i, s in enumerate(seen) if s.status != "kept"}


def run_datasketch(texts: list[str], threshold: float, num_perm: int) -> set[int]:
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    removed = set()
    for i, text in enumerate(texts):
        toks = tokens(text)
        grams = {" ".join(toks[j : j + 3]) for j in range(max(len(toks) - 2, 1))}
        m = MinHash(num_perm=num_perm)
        m.update_batch([g.encode() for g in grams])
        if lsh.query(m):
            removed.add(i)
        else:
            lsh.insert(str(i), m)
    return removed


def bytes_per_doc(texts: list[str], threshold: float, num_perm: int) -> float:
    dedup = Deduplicator(threshold, num_perm)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = sum(dedup.add(str(i), t).status == "kept" for i, t in enumerate(texts))
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200_000)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--num-perm", type=int, default=128)
    args = parser.parse_args()

    texts, planted = make_corpus(args.docs)
    positives = {
        c
        for c, s in planted.items()
        if jaccard(shingles(texts[c]), shingles(texts[s])) >= args.threshold
    }
    print(
        f"{len(texts):,} docs, {len(planted):,} planted copies, {len(positives):,} with "
        f"Jaccard >= {args.threshold} (positives); num_perm={args.num_perm}"
    )

    contenders: list[tuple[str, Callable[[], set[int]]]] = [
        ("kahani, 1 process", lambda: run_kahani(texts, args.threshold, args.num_perm, 1)),
        ("kahani, 2 processes", lambda: run_kahani(texts, args.threshold, args.num_perm, 2)),
        ("datasketch", lambda: run_datasketch(texts, args.threshold, args.num_perm)),
    ]
    rows = []
    for name, run in contenders:
        dedup._chunks.clear()  # no run profits from words memoized by the one before
        start = time.perf_counter()
        removed = run()
        rate = len(texts) / (time.perf_counter() - start)
        rows.append((name, rate, *score(removed, positives)))
    base = rows[-1][1]
    print(f"{'':22} {'docs/s':>9} {'vs datasketch':>14} {'recall':>7} {'precision':>9}")
    for name, rate, recall, precision in rows:
        print(f"{name:22} {rate:9,.0f} {rate / base:13.2f}x {recall:7.4f} {precision:9.4f}")

    sample = texts[:20_000]
    start = time.perf_counter()
    for text in sample:
        tokens(text)
    tokenize_us = (time.perf_counter() - start) / len(sample) * 1e6
    print(f"of datasketch's {1e6 / base:.0f} us per doc, tokens() takes {tokenize_us:.0f} us")
    dedup._chunks.clear()
    per_doc = bytes_per_doc(sample, args.threshold, args.num_perm)
    print(
        f"memory: {per_doc:,.0f} bytes per kept doc (tracemalloc, {len(sample):,} docs) "
        f"-> {per_doc * 1e6 / 2**30:.1f} GiB for 1,000,000 unique docs"
    )


if __name__ == "__main__":
    main()
