"""Synthetic Devanagari documents with planted near-duplicates, shared by the dedup benchmarks.

A vocabulary of a few thousand words with vowel signs, viramas (conjuncts) and nuktas;
documents of ~150 words drawn from it with Zipf-like weights; 10% planted near-duplicates
(copies of an earlier original with 1-7 words substituted, inserted or deleted).
"""

import numpy as np

CONSONANTS = [chr(c) for c in range(0x0915, 0x093A)]
VOWEL_SIGNS = [chr(c) for c in range(0x093E, 0x094D)]
NUKTA, VIRAMA, ANUSVARA = "\u093c", "\u094d", "\u0902"


def make_vocab(rng: np.random.Generator, size: int, max_syllables: int = 3) -> list[str]:
    """`size` distinct words of 1 to `max_syllables` syllables, sorted."""
    words: set[str] = set()
    while len(words) < size:
        word = ""
        for _ in range(rng.integers(1, max_syllables + 1)):
            word += rng.choice(CONSONANTS) + (NUKTA if rng.random() < 0.1 else "")
            if rng.random() < 0.2:
                word += VIRAMA + rng.choice(CONSONANTS)  # a conjunct
            if rng.random() < 0.6:
                word += rng.choice(VOWEL_SIGNS)
        words.add(word + (ANUSVARA if rng.random() < 0.1 else ""))
    return sorted(words)


def make_corpus(n: int, seed: int = 0) -> tuple[list[str], dict[int, int]]:
    """n documents, a tenth of them planted near-copies; returns texts and copy -> source.

    Documents are built as word numbers (2 bytes a word) and joined into text at the end, so a
    million of them take ~0.3 GB before the texts themselves.
    """
    rng = np.random.default_rng(seed)
    vocab = make_vocab(rng, 4000)
    weights = 1.0 / (np.arange(len(vocab)) + 20.0)
    weights /= weights.sum()

    def draw(k: int) -> np.ndarray:
        return rng.choice(len(vocab), size=k, p=weights).astype(np.int16)

    docs: list[np.ndarray] = []
    planted: dict[int, int] = {}
    for i in range(n):
        if i < 10 or rng.random() >= 0.1:
            docs.append(draw(int(rng.integers(120, 181))))
            continue
        source = int(rng.integers(0, i))
        while source in planted:  # copy an original, not a copy
            source = int(rng.integers(0, i))
        words = docs[source].tolist()
        for _ in range(rng.integers(1, 8)):  # 1-7 edits of ~150 words
            pos, op = int(rng.integers(0, len(words))), rng.integers(0, 3)
            if op == 0:
                words[pos] = int(draw(1)[0])
            elif op == 1:
                words.insert(pos, int(draw(1)[0]))
            else:
                del words[pos]
        planted[i] = source
        docs.append(np.array(words, dtype=np.int16))
    return [" ".join([vocab[w] for w in d.tolist()]) + "।" for d in docs], planted
