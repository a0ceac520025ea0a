"""Text primitives for Indic scripts: NFC, words that keep their combining marks, script shares.

A word is a run of letters together with their combining marks (`[\\p{L}\\p{M}]+`): `\\w`,
`\\W` splits and English tokenizers cut Devanagari and Bengali words apart at vowel signs,
viramas and nuktas, which are marks.
"""

import json
import re
import unicodedata
from collections.abc import Iterator

import regex

WORD = regex.compile(r"[\p{L}\p{M}]+")
FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)
LETTER = regex.compile(r"\p{L}")


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def words(text: str) -> list[str]:
    """Grapheme-safe words of NFC text: `बच्चे` is one word, not three pieces."""
    return WORD.findall(nfc(text))


def script_share(text: str, script: str) -> float:
    """Share of the letters of `text` that belong to `script` (1.0 when it has no letters)."""
    letters = LETTER.findall(text)
    if not letters:
        return 1.0
    in_script = regex.compile(rf"\p{{Script={script}}}")
    return sum(1 for ch in letters if in_script.match(ch)) / len(letters)


def json_objects(text: str) -> Iterator[dict]:
    """JSON objects inside an LLM answer, first those in code fences, then any in the text:
    models wrap JSON in fences and prose however often they are told not to."""
    decoder = json.JSONDecoder()
    for candidate in [m.group(1) for m in FENCE.finditer(text)] + [text]:
        for start in (i for i, ch in enumerate(candidate) if ch == "{"):
            try:
                obj, _ = decoder.raw_decode(candidate, start)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                yield obj
