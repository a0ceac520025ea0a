"""Hygiene of the shipped word lists: enough entries, NFC, no duplicates, the right script."""

import unicodedata

import pytest
import regex

from factory.languages import LANGUAGES
from factory.paths import VOCAB_DIR
from factory.vocab import read_word_list

STORY_MINIMUMS = {"nouns": 300, "verbs": 150, "adjectives": 150, "features": 10}
HINGLISH_MINIMUMS = {"topics": 300, "personas": 20, "settings": 20}

# Letters and marks of the script, with spaces and the joiners Indic spelling uses.
ENTRY_PATTERNS = {
    "Devanagari": regex.compile(r"^[\p{Script=Devanagari}\u200c\u200d ]+$"),
    "Bengali": regex.compile(r"^[\p{Script=Bengali}\u200c\u200d ]+$"),
    "Latin": regex.compile(r"^[A-Za-z' -]+$"),
}

CASES = [
    (lang, name, minimum)
    for lang, spec in LANGUAGES.items()
    for name, minimum in (STORY_MINIMUMS if spec.kind == "story" else HINGLISH_MINIMUMS).items()
]


def raw_entries(lang: str, name: str) -> list[str]:
    path = VOCAB_DIR / lang / f"{name}.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize(("lang", "name", "minimum"), CASES)
def test_list_is_large_enough(lang, name, minimum):
    assert len(read_word_list(VOCAB_DIR / lang / f"{name}.txt")) >= minimum


@pytest.mark.parametrize(("lang", "name", "minimum"), CASES)
def test_entries_are_nfc_and_unique(lang, name, minimum):
    entries = raw_entries(lang, name)
    assert [e for e in entries if not unicodedata.is_normalized("NFC", e)] == []
    folded = [e.casefold() for e in entries]
    assert sorted({e for e in folded if folded.count(e) > 1}) == []


@pytest.mark.parametrize(("lang", "name", "minimum"), CASES)
def test_entries_are_in_the_language_script(lang, name, minimum):
    pattern = ENTRY_PATTERNS[LANGUAGES[lang].script]
    assert [e for e in raw_entries(lang, name) if not pattern.match(e)] == []


def test_bangla_lists_hold_no_devanagari_at_all():
    text = "".join((VOCAB_DIR / "bangla" / f"{f}.txt").read_text() for f in STORY_MINIMUMS)
    assert not regex.search(r"\p{Script=Devanagari}", text)


TAG_LISTS = ("hindi_words", "english_words", "ambiguous_words")


@pytest.mark.parametrize("name", TAG_LISTS)
def test_language_tag_lists_are_lowercase_ascii_and_unique(name):
    entries = raw_entries("hinglish", name)
    assert [e for e in entries if not regex.fullmatch(r"[a-z']+", e)] == []
    assert len(entries) == len(set(entries))


def test_language_tag_lists_do_not_overlap():
    hindi, english, ambiguous = (set(raw_entries("hinglish", n)) for n in TAG_LISTS)
    assert hindi & english == set()  # a word in both belongs in ambiguous_words
    assert ambiguous & (hindi | english) == set()
    assert {"nahi", "nahin", "nai", "kya", "kia"} <= hindi  # spelling variants are all Hindi
    assert {"main", "to"} <= ambiguous
