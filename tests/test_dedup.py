"""Deduplication: grapheme-safe tokens, NFC, exact and verified near-duplicates, clusters."""

import re
import unicodedata

import numpy as np
import pytest

from factory.dedup import (
    Deduplicator,
    Seen,
    exact_key,
    jaccard,
    optimal_bands,
    shingles,
    tokens,
)


def corpus(n: int, seed: int = 0) -> tuple[list[str], dict[int, int]]:
    """~150-word Devanagari docs; a tenth copy an earlier doc with 1-4 words changed."""
    rng = np.random.default_rng(seed)
    consonants = [chr(c) for c in range(0x0915, 0x0929)]
    signs = ["", "\u093e", "\u093f", "\u0940", "\u0947", "\u094b", "\u094d\u092f", "\u093c"]
    vocab = sorted(
        {"".join(rng.choice(consonants) + rng.choice(signs) for _ in range(3)) for _ in range(3000)}
    )
    docs: list[list[str]] = []
    planted: dict[int, int] = {}
    for i in range(n):
        if i > 0 and rng.random() < 0.1:
            source = int(rng.integers(0, i))
            words = list(docs[source])
            for pos in rng.integers(0, len(words), int(rng.integers(1, 5))):
                words[pos] = rng.choice(vocab)
            planted[i] = source
        else:
            words = list(rng.choice(vocab, int(rng.integers(130, 170))))
        docs.append(words)
    return [" ".join(d) + "।" for d in docs], planted


def deduplicate(texts: list[str], ids: list[str] | None = None, **settings) -> list[Seen]:
    """What the deduplicator says of each text, in order."""
    dedup = Deduplicator(**settings)
    return [dedup.add(ids[i] if ids else str(i), t) for i, t in enumerate(texts)]


def test_tokens_keep_vowel_signs_viramas_and_conjuncts_whole():
    assert tokens("बच्चे खेलते हैं।") == ["बच्चे", "खेलते", "हैं"]
    assert tokens("পরীক্ষা, ক্ষমা!") == ["পরীক্ষা", "ক্ষমা"]
    assert tokens("The Cat  SAT") == ["the", "cat", "sat"]
    # The split this replaces cuts the words at their marks.
    assert re.split(r"\W+", "बच्चे") == ["बच", "च", ""]
    assert re.findall(r"\w+", "ক্ষমা") == ["ক", "ষম"]
    assert shingles("बच्चे खेलते हैं", ngram=1).size == 3  # one shingle per whole word
    assert shingles("পরীক্ষা ক্ষমা", ngram=1).size == 2


def test_document_shorter_than_n_is_one_shingle():
    assert shingles("एक दो", ngram=3).size == 1
    assert shingles("एक दो तीन चार", ngram=3).size == 2


def test_precomposed_and_decomposed_nukta_are_exact_duplicates():
    pre, dec = "\u0958\u093e\u0917\u091c\u093c", "\u0915\u093c\u093e\u0917\u091c\u093c"  # काग़ज़
    assert pre != dec and unicodedata.normalize("NFC", pre) == unicodedata.normalize("NFC", dec)
    result = deduplicate([pre, dec], ["a", "b"])
    assert [v.status for v in result] == ["kept", "exact_duplicate"]
    assert result[1].duplicate_of == "a"


def test_normalization_is_the_same_for_exact_and_shingle_keys():
    text = "राजा  ने  कहा: ‘यह ग़ज़ब है!’ The END. আমি ক্ষমা চাই"
    variant = " " + unicodedata.normalize("NFD", text).upper().replace("  ", "\n") + "\t"
    assert exact_key(variant) == exact_key(text)
    assert np.array_equal(shingles(variant), shingles(text))
    assert exact_key(text) != exact_key(text.replace("कहा", "कहे"))


def test_exact_duplicates_and_empty_documents():
    dedup = Deduplicator()
    assert dedup.add("1", "Ek  kahani.").status == "kept"
    assert dedup.add("2", "ek kahani.").status == "exact_duplicate"
    assert dedup.add("3", "ek kahani!").status == "near_duplicate"  # same words, not same text
    assert dedup.add("4", "123 ...").status == "kept"  # no words: exact dedup only
    assert dedup.add("5", "456").status == "kept"


def test_near_duplicate_recall_and_precision_on_planted_copies():
    texts, planted = corpus(3000)
    positives = {
        c for c, s in planted.items() if jaccard(shingles(texts[c]), shingles(texts[s])) >= 0.8
    }
    assert len(positives) > 200
    removed = {i for i, v in enumerate(deduplicate(texts)) if v.status != "kept"}
    hits = len(removed & positives)
    assert hits / len(positives) >= 0.95
    assert hits / len(removed) >= 0.99


def test_candidates_below_threshold_are_rejected_by_verification():
    base = [f"w{i}" for i in range(60)]
    a, b = " ".join(base), " ".join(base[:30] + [f"x{i}" for i in range(30)])
    j = jaccard(shingles(a), shingles(b))
    assert 0.2 < j < 0.8
    dedup = Deduplicator(bands=(128, 1))  # one row per band: pairs this similar always collide
    fa, fb = dedup.hasher.fingerprint(a), dedup.hasher.fingerprint(b)
    assert any(x == y for x, y in zip(fa.bands, fb.bands, strict=True))
    assert dedup.add_fingerprint("a", fa).status == "kept"
    assert dedup.add_fingerprint("b", fb).status == "kept"
    lower = Deduplicator(threshold=j, bands=(128, 1))  # the same pair passes a lower threshold
    lower.add("a", a)
    assert lower.add("b", b).jaccard == pytest.approx(j)


def test_first_of_a_cluster_is_kept_and_the_others_point_at_it():
    texts, _ = corpus(40, seed=3)
    source = texts[0]
    words = source.split()
    copy = " ".join([*words[:50], "नया", *words[51:]])
    result = deduplicate([source, texts[1], copy, source.upper(), texts[2]], list("abcde"))
    assert [v.status for v in result] == [
        "kept",
        "kept",
        "near_duplicate",
        "exact_duplicate",
        "kept",
    ]
    assert [v.duplicate_of for v in result] == [None, None, "a", "a", None]
    j = jaccard(shingles(source), shingles(copy))
    assert result[2].jaccard == pytest.approx(j) and j >= 0.8
    assert result[3].jaccard == 1.0


def test_results_are_deterministic():
    texts, _ = corpus(600, seed=7)
    one = deduplicate(texts, seed=5)
    assert one == deduplicate(texts, seed=5)
    assert any(v.status != "kept" for v in one)


def test_bands_follow_datasketch_optimal_param():
    assert optimal_bands(0.8, 128) == (9, 13)  # datasketch.lsh._optimal_param(0.8, 128, .5, .5)
    assert optimal_bands(0.5, 128) == (25, 5)
    assert Deduplicator().hasher.bands * Deduplicator().hasher.rows <= 128
