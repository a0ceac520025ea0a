"""Sanity controls for the judge: damaged copies of texts it also scores.

A judge worth trusting scores a story above the same story with its sentences shuffled,
cut off half-way, or with a passage in the wrong script. The report shows how often it
does; a judge that cannot tell them apart should not be trusted with the real scores.
"""

import random

import regex

SENTENCE_END = regex.compile(r"(?<=[।.!?])\s+")
# A passage in a script the language does not use, for the wrong-script control.
FOREIGN_PASSAGE = {
    "Devanagari": "একদিন একটি ছোট্ট পাখি গাছের ডালে বসে গান গাইছিল।",  # Bengali
    "Bengali": "एक दिन एक छोटी चिड़िया पेड़ की डाल पर बैठकर गाना गा रही थी।",  # Devanagari
    "Latin": "एक दिन एक छोटी चिड़िया पेड़ की डाल पर बैठकर गाना गा रही थी।",  # Devanagari
}
KINDS = ("shuffled", "truncated", "wrong_script")


def damaged(text: str, kind: str, script: str, seed: int) -> str | None:
    """A damaged copy of `text`, or None when the text is too short to damage that way."""
    sentences = [s for s in SENTENCE_END.split(text.strip()) if s]
    if kind == "shuffled":
        if len(sentences) < 3:
            return None
        rng = random.Random(seed)
        order = list(range(len(sentences)))
        while order == sorted(order):
            rng.shuffle(order)
        return " ".join(sentences[i] for i in order)
    if kind == "truncated":
        words = text.split()
        return " ".join(words[: len(words) // 2]) if len(words) >= 8 else None
    if kind == "wrong_script":
        if len(sentences) < 2:
            return None
        middle = len(sentences) // 2
        return " ".join([*sentences[:middle], FOREIGN_PASSAGE[script], *sentences[middle:]])
    raise ValueError(kind)
