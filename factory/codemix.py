"""Token-level language tags for Hinglish, and the Code-Mixing Index built on them.

Tags come from word lists shipped in `vocab_lists/hinglish/`: `hindi_words.txt` (romanized
Hindi, spelling variants included), `english_words.txt`, and `ambiguous_words.txt` (words
common in both, such as "main" or "to", which count as neither). Unknown words are left
untagged rather than guessed.
"""

from collections import Counter
from functools import cache
from pathlib import Path

from factory.paths import VOCAB_DIR
from factory.textutil import words
from factory.vocab import read_word_list

HI, EN, AMBIGUOUS, UNKNOWN = "hi", "en", "amb", "unk"


@cache
def _lexicon(vocab_dir: Path) -> dict[str, str]:
    lexicon = {}
    for tag, name in ((HI, "hindi_words"), (EN, "english_words"), (AMBIGUOUS, "ambiguous_words")):
        for word in read_word_list(vocab_dir / f"{name}.txt"):
            lexicon[word.casefold()] = tag
    return lexicon


def tag_tokens(text: str, vocab_dir: Path = VOCAB_DIR / "hinglish") -> list[tuple[str, str]]:
    """(word, tag) for each word: hi, en, amb (both languages) or unk (in no list)."""
    lexicon = _lexicon(vocab_dir)
    return [(w, lexicon.get(w.casefold(), UNKNOWN)) for w in words(text)]


def code_mixing_index(tags: list[str]) -> float:
    """Das & Gambäck's CMI, 0 (one language) to 50 (two languages in equal measure):
    100 * (1 - dominant / (n - u)), where u counts tokens of neither language."""
    counts = Counter(t for t in tags if t in (HI, EN))
    tagged = sum(counts.values())
    if tagged == 0:
        return 0.0
    return 100.0 * (1 - max(counts.values()) / tagged)
