"""Exact and near-duplicate removal for stories and conversations, in input order.

Why this module exists: the usual near-duplicate tools tokenize with `\\W` splits or English word
tokenizers, which cut `बच्चे` apart at its vowel signs, and some drop combining marks (the
Devanagari virama, nukta and vowel signs) outright. Here a token is a run of letters together
with their marks, `[\\p{L}\\p{M}]+`, after NFC and casefolding, so `क़` typed precomposed or
decomposed is the same token and Bengali conjuncts like `ক্ষ` stay whole.

How: a document is first looked up by the hash of its normalized text (exact duplicates). Else
its word 3-gram shingles are hashed to uint64 once, MinHashed for all permutations at once with
numpy, and the signature cut into LSH bands (bands and rows chosen for the threshold as
datasketch's `_optimal_param` does, weighted towards recall). LSH only proposes candidates: each
is verified by the exact Jaccard similarity of the two shingle sets, so nothing is removed on an
estimate. The first document of a cluster is kept; later ones are compared against kept
documents only.

Memory, per kept document of ~150 words with the defaults (a duplicate stores only its cluster
entry; signatures are dropped once banded): the sorted shingle hashes as bytes (~150 x 8 + 33 =
1.2 KB), 16 band-table dict entries (~16 x 75 B), the exact-hash entry and the id (~200 B):
about 2.6 KB, so 1,000,000 unique stories need ~2.5 GiB, plus at most ~70 MB of memoized
words. `bench/dedup.py` measures the bytes per document with tracemalloc.
"""

import hashlib
import unicodedata
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np

from factory.textutil import WORD

_SHINGLE_MUL = np.uint64(0x9E3779B97F4A7C15)  # odd: rolls token hashes into an n-gram hash


def normalize(text: str) -> str:
    """NFC then casefold: the form both exact and near-duplicate keys are computed on."""
    return unicodedata.normalize("NFC", text).casefold()


def tokens(text: str) -> list[str]:
    """Grapheme-safe words: letters with their combining marks, never split at a mark."""
    return WORD.findall(normalize(text))


def _hash64(data: str) -> int:
    """Stable across runs and machines (Python's `hash` is salted per process)."""
    return int.from_bytes(hashlib.blake2b(data.encode(), digest_size=8).digest(), "little")


def exact_key(text: str) -> int:
    """Hash of the text after NFC, casefolding and collapsing whitespace."""
    return _analyse(text)[0]


_chunks: dict[str, tuple[str, list[int]]] = {}
_CHUNK_CACHE = 1 << 18  # entries; ~250 B each, cleared when full


def _chunk(raw: str) -> tuple[str, list[int]]:
    """A whitespace-free chunk normalized, with its token hashes; memoized, as words repeat.

    NFC cannot join text across whitespace, so normalizing chunk by chunk equals normalizing
    the whole text, and Devanagari (whose marks defeat NFC's quick check) pays once per word.
    """
    hit = _chunks.get(raw)
    if hit is None:
        if len(_chunks) >= _CHUNK_CACHE:
            _chunks.clear()
        norm = normalize(raw)
        hit = _chunks[raw] = (norm, [_hash64(t) for t in WORD.findall(norm)])
    return hit


def _analyse(text: str) -> tuple[int, np.ndarray]:
    """(exact key, uint64 hash of each token): one pass over the chunks for both."""
    parts = [_chunk(c) for c in text.split()]
    hashes: list[int] = []
    for _, h in parts:
        hashes.extend(h)
    return _hash64(" ".join(norm for norm, _ in parts)), np.array(hashes, dtype=np.uint64)


def _shingles(h: np.ndarray, ngram: int) -> np.ndarray:
    if h.size == 0:
        return h
    n = min(ngram, h.size)
    acc = h[: h.size - n + 1].copy()
    for i in range(1, n):
        acc *= _SHINGLE_MUL
        acc += h[i : h.size - n + 1 + i]
    return np.unique(acc)


def shingles(text: str, ngram: int = 3) -> np.ndarray:
    """Sorted unique uint64 hashes of the word n-grams; a doc shorter than n is one shingle."""
    return _shingles(_analyse(text)[1], ngram)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted unique shingle arrays."""
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)


def optimal_bands(threshold: float, num_perm: int, fp_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimising weighted false positive and negative areas, as datasketch does.

    A pair of similarity s shares at least one band with probability 1 - (1 - s^r)^b; the error
    is that curve's area below the threshold (weight fp_weight) plus its shortfall from 1 above
    it (weight 1 - fp_weight). The default 0.5 gives datasketch's choice.
    """
    pairs = [(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)]
    b, r = (np.array(x, dtype=np.float64)[:, None] for x in zip(*pairs, strict=True))
    lo, hi = np.linspace(0.0, threshold, 1001), np.linspace(threshold, 1.0, 1001)
    fp = np.trapezoid(1 - (1 - lo**r) ** b, lo, axis=1)
    fn = np.trapezoid((1 - hi**r) ** b, hi, axis=1)
    return pairs[int(np.argmin(fp_weight * fp + (1 - fp_weight) * fn))]


class Fingerprint(NamedTuple):
    """What the index needs of a document; computed anywhere (worker processes), used once."""

    exact: int
    shingles: bytes  # sorted unique uint64 shingle hashes
    bands: list[int]  # one key per LSH band; empty for a document without words


@dataclass(frozen=True)
class MinHasher:
    """MinHash with the family (a * x + b) mod 2^32 over all shingles and permutations at once.

    x is the high half of a shingle hash, a is odd, so each function permutes the 32-bit range
    (datasketch's default `affine32` scheme). One (shingles x num_perm) multiply, add and min
    replace datasketch's per-shingle Python hashing; 32 bits halve the work of 64.
    """

    num_perm: int = 128
    bands: int = 16
    rows: int = 8
    ngram: int = 3
    seed: int = 1
    _params: tuple[np.ndarray, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"{self.bands} bands x {self.rows} rows > {self.num_perm} perms")
        rng = np.random.default_rng(self.seed)
        a, b = rng.integers(0, 2**32, (2, self.num_perm), dtype=np.uint32)
        mix = rng.integers(0, 2**64, self.rows, dtype=np.uint64) | np.uint64(1)
        object.__setattr__(self, "_params", (a | np.uint32(1), b, mix))

    def signature(self, sh: np.ndarray) -> np.ndarray:
        a, b, _ = self._params
        values = np.multiply.outer((sh >> np.uint64(32)).astype(np.uint32), a)
        values += b
        return values.min(axis=0)

    def fingerprint(self, text: str) -> Fingerprint:
        exact, h = _analyse(text)
        sh = _shingles(h, self.ngram)
        if sh.size == 0:
            return Fingerprint(exact, b"", [])
        sig = self.signature(sh)[: self.bands * self.rows].reshape(self.bands, self.rows)
        # A band's key: its rows mixed mod 2^64. A collision only costs one verification.
        keys = (sig.astype(np.uint64) * self._params[2]).sum(axis=1)
        return Fingerprint(exact, sh.tobytes(), keys.tolist())


Status = Literal["kept", "exact_duplicate", "near_duplicate"]


@dataclass(frozen=True, slots=True)
class Seen:
    """What the deduplicator made of one document; `jaccard` is its similarity to the kept one."""

    doc_id: str
    status: Status
    duplicate_of: str | None = None
    jaccard: float = 1.0


class Deduplicator:
    """Streaming deduplication: `add` each record as it arrives and act on the verdict.

    Only kept documents are indexed, so memory grows with the unique documents (see the module
    docstring for the bytes per document).
    """

    def __init__(
        self,
        threshold: float = 0.8,
        num_perm: int = 128,
        ngram: int = 3,
        seed: int = 1,
        bands: tuple[int, int] | None = None,
    ) -> None:
        # Candidates are verified, so a false positive costs one Jaccard while a false negative
        # keeps a duplicate: weight them 1:19 (for 0.8 and 128: 16 bands of 8 rows, not 9 x 13).
        b, r = bands or optimal_bands(threshold, num_perm, fp_weight=0.05)
        self.threshold = threshold
        self.hasher = MinHasher(num_perm, b, r, ngram, seed)
        self._count = 0
        self._exact: dict[int, int] = {}
        self._kept: dict[int, tuple[str, bytes]] = {}  # index -> (id, shingle hashes)
        self._tables: list[dict[int, int | list[int]]] = [{} for _ in range(b)]

    def add(self, doc_id: str, text: str) -> Seen:
        return self.add_fingerprint(doc_id, self.hasher.fingerprint(text))

    def add_fingerprint(self, doc_id: str, fp: Fingerprint) -> Seen:
        index, self._count = self._count, self._count + 1
        if (kept := self._exact.get(fp.exact)) is not None:
            return self._record(doc_id, index, kept, "exact_duplicate", 1.0)
        sh = np.frombuffer(fp.shingles, dtype=np.uint64)
        best, best_j = -1, self.threshold
        for cand in sorted(self._candidates(fp.bands)):
            j = jaccard(sh, np.frombuffer(self._kept[cand][1], dtype=np.uint64))
            if j > best_j or (j == best_j and best < 0):
                best, best_j = cand, j
        if best >= 0:
            return self._record(doc_id, index, best, "near_duplicate", best_j)
        self._exact[fp.exact] = index
        self._kept[index] = (doc_id, fp.shingles)
        for table, key in zip(self._tables, fp.bands, strict=False):
            bucket = table.get(key)
            if bucket is None:
                table[key] = index
            elif isinstance(bucket, int):
                table[key] = [bucket, index]
            else:
                bucket.append(index)
        return Seen(doc_id, "kept")

    def _candidates(self, bands: list[int]) -> set[int]:
        found: set[int] = set()
        for table, key in zip(self._tables, bands, strict=False):
            bucket = table.get(key)
            if isinstance(bucket, int):
                found.add(bucket)
            elif bucket is not None:
                found.update(bucket)
        return found

    def _record(self, doc_id: str, index: int, kept: int, status: Status, j: float) -> Seen:
        return Seen(doc_id, status, self._kept[kept][0], j)
