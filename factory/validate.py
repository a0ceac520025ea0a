"""Validators: is a raw answer training data? Each rejection has a reason code and a detail.

Nothing is ever stripped from a text to make it pass: a story in the wrong script is
rejected, not filtered down to the letters of the right one.
"""

from collections import Counter
from dataclasses import dataclass, field

import regex
from pydantic import BaseModel, ConfigDict

from factory.codemix import AMBIGUOUS, EN, HI, code_mixing_index, tag_tokens
from factory.languages import Language
from factory.textutil import json_objects, nfc, script_share, words


class Limits(BaseModel):
    """Thresholds of the checks; `factory clean` takes them as flags."""

    model_config = ConfigDict(extra="forbid")

    min_script_share: float = 0.95  # letters in the language's script
    min_words: int = 60
    max_words: int = 800
    max_repeated_trigrams: float = 0.25  # share of word 3-grams that repeat an earlier one
    min_cmi: float = 5.0  # Hinglish must actually mix...
    max_cmi: float = 50.0  # ...and 50 is the most two languages can mix
    min_turn_words: int = 2
    max_turn_words: int = 120
    allow_devanagari: bool = False  # in Hinglish conversations


@dataclass
class Verdict:
    reason: str | None  # None when the record is accepted
    detail: str = ""
    text: str = ""  # the story, or the conversation as "A: ..." lines
    messages: list[dict[str, str]] = field(default_factory=list)  # conversations only

    @property
    def ok(self) -> bool:
        return self.reason is None


# Refusals and talk about the task instead of the task (English and the story languages).
# Only phrases a character in a children's story would not say: "I'm sorry" alone is dialogue.
META_PATTERNS = [
    r"\bas an ai\b",
    r"\bi(?: am|'m) sorry, but\b",
    r"\bi(?: am|'m) unable to\b",
    r"\bi can(?:no|')t (?:help|write|create)\b",
    r"\bhere(?: is|'s) (?:a|your|the) (?:short )?(?:story|conversation)\b",
    r"\blanguage model\b",
    r"\bsure[,!] here\b",
    r"मैं एक (?:एआई|AI)",
    r"यहाँ (?:आपकी|एक) कहानी है",
    r"ही (?:तुमची|एक) गोष्ट आहे",
    r"এখানে (?:আপনার|একটি) গল্প",
]
META = regex.compile("|".join(META_PATTERNS), regex.IGNORECASE)

# Common inflectional endings, longest first; a required word matches any word of the
# text that starts with its stem, so खेलना matches खेल रहे थे and लड़का matches लड़के.
SUFFIXES = {
    "hindi": [
        "ियाँ",
        "ियां",
        "ियों",
        "ाओं",
        "ाएँ",
        "ाएं",
        "ना",
        "ने",
        "नी",
        "ता",
        "ते",
        "ती",
        "ों",
        "ें",
        "ा",
        "ी",
        "े",
        "ो",
    ],
    "marathi": ["ण्यास", "णारा", "णारी", "णे", "ला", "ली", "ले", "ा", "ी", "े", "ो"],
    "bangla": ["ানো", "ওয়া", "য়া", "া", "ে", "ি", "ো"],
    "english": ["ing", "ies", "ied", "es", "ed", "er", "est", "ly", "s", "y", "e"],
}
# English irregular forms a story is likely to use instead of the base form.
IRREGULAR = {
    "go": "went gone goes",
    "run": "ran",
    "eat": "ate eaten",
    "see": "saw seen",
    "come": "came",
    "give": "gave given",
    "take": "took taken",
    "find": "found",
    "make": "made",
    "sit": "sat",
    "swim": "swam swum",
    "fly": "flew flown flies",
    "sing": "sang sung",
    "draw": "drew drawn",
    "write": "wrote written",
    "ride": "rode ridden",
    "throw": "threw thrown",
    "catch": "caught",
    "buy": "bought",
    "bring": "brought",
    "think": "thought",
    "feel": "felt",
    "keep": "kept",
    "sleep": "slept",
    "hold": "held",
    "tell": "told",
    "say": "said",
    "build": "built",
    "fall": "fell fallen",
    "hide": "hid hidden",
    "grow": "grew grown",
    "know": "knew known",
    "blow": "blew blown",
    "dig": "dug",
    "win": "won",
    "lose": "lost",
    "leave": "left",
    "meet": "met",
    "feed": "fed",
    "shine": "shone",
    "wake": "woke woken",
    "break": "broke broken",
    "speak": "spoke spoken",
    "wear": "wore worn",
    "begin": "began begun",
    "drink": "drank drunk",
    "child": "children",
    "mouse": "mice",
    "foot": "feet",
    "tooth": "teeth",
    "man": "men",
    "woman": "women",
    "goose": "geese",
    "sheep": "sheep",
    "fish": "fish",
}


def stem(word: str, language: str) -> str:
    """The word without its longest known ending, keeping at least two letters."""
    for suffix in SUFFIXES.get(language, []):
        if word.endswith(suffix) and len(word) - len(suffix) >= 2:
            return word[: -len(suffix)]
    return word


def contains_word(text_words: list[str], entry: str, language: str) -> bool:
    """Every word of a word-list entry appears in the text, in some inflected form."""
    folded = [w.casefold() for w in text_words]
    for part in words(entry.casefold()):
        forms = {stem(part, language), *IRREGULAR.get(part, "").split()}
        if not any(w.startswith(form) for w in folded for form in forms):
            return False
    return True


def extract_json(text: str, key: str) -> tuple[object | None, str]:
    """The value under `key` of the first JSON object in an answer: tolerates code fences and
    text around the object. Returns (value, problem); problem is "" when found."""
    for obj in json_objects(text):
        if key in obj:
            return obj[key], ""
        return None, f"no {key!r} key (keys: {', '.join(map(str, obj))[:80]})"
    return None, "no JSON object in the answer"


def repeated_trigram_share(tokens: list[str]) -> float:
    """Share of word 3-grams that already occurred: loops ("the dog ran. the dog ran.") score
    high."""
    grams = list(zip(tokens, tokens[1:], tokens[2:], strict=False))
    if not grams:
        return 0.0
    return sum(n - 1 for n in Counter(grams).values()) / len(grams)


def check_story(
    answer: str,
    finish_reason: str | None,
    variables: dict,
    language: Language,
    json_key: str | None,
    limits: Limits,
    forbidden: list[str] = (),
    json_required: bool = True,
) -> Verdict:
    """Story checks, most basic problem first; the first failure is the reason. With
    json_required=False (imported data) a text without the JSON is taken as the story."""
    if finish_reason == "length":
        return Verdict("truncated", "the answer stopped at max_tokens")
    text = nfc(answer)
    if json_key:
        value, problem = extract_json(text, json_key)
        if problem and not json_required:
            value = text
        elif problem:
            return Verdict("no_json", problem)
        if not isinstance(value, str) or not value.strip():
            return Verdict("no_json", f"{json_key!r} is not a non-empty string")
        text = value.strip()
    if META.search(text):
        return Verdict("meta_text", f"refusal or meta text: {META.search(text).group(0)!r}")
    share = script_share(text, language.script)
    if share < limits.min_script_share:
        return Verdict("wrong_script", f"{share:.0%} of letters in {language.script}")
    tokens = words(text)
    if len(tokens) < limits.min_words:
        return Verdict("too_short", f"{len(tokens)} words < {limits.min_words}")
    if len(tokens) > limits.max_words:
        return Verdict("too_long", f"{len(tokens)} words > {limits.max_words}")
    repeats = repeated_trigram_share([t.casefold() for t in tokens])
    if repeats > limits.max_repeated_trigrams:
        return Verdict("degenerate", f"{repeats:.0%} of word 3-grams repeat")
    for var in ("noun", "verb", "adjective"):
        if var in variables and not contains_word(tokens, str(variables[var]), language.name):
            return Verdict(f"missing_{var}", f"{variables[var]!r} not found")
    for word in forbidden:
        if contains_word(tokens, word, language.name):
            return Verdict("forbidden_word", f"{word!r} is used")
    return Verdict(None, text=text)


def check_conversation(
    answer: str,
    finish_reason: str | None,
    variables: dict,
    json_key: str | None,
    limits: Limits,
) -> Verdict:
    if finish_reason == "length":
        return Verdict("truncated", "the answer stopped at max_tokens")
    value, problem = extract_json(nfc(answer), json_key or "conversation")
    if problem:
        return Verdict("no_json", problem)
    if not isinstance(value, list) or not all(
        isinstance(t, dict) and isinstance(t.get("text"), str) for t in value
    ):
        return Verdict("bad_turns", "the conversation is not a list of {speaker, text} turns")
    speakers = [str(t.get("speaker", "")).strip().upper() for t in value]
    expected = ["A" if i % 2 == 0 else "B" for i in range(len(value))]
    if speakers != expected:
        return Verdict("bad_turns", f"speakers {''.join(speakers)[:20]} do not alternate from A")
    asked = variables.get("turns")
    if asked is not None and len(value) != int(asked):
        return Verdict("bad_turns", f"{len(value)} turns, asked for {asked}")
    turns = [t["text"].strip() for t in value]
    text = "\n".join(f"{s}: {t}" for s, t in zip(speakers, turns, strict=True))
    if META.search(text):
        return Verdict("meta_text", f"refusal or meta text: {META.search(text).group(0)!r}")
    if not limits.allow_devanagari and regex.search(r"\p{Script=Devanagari}", text):
        return Verdict("wrong_script", "Devanagari in a romanized conversation")
    for i, turn in enumerate(turns):
        n = len(words(turn))
        if not limits.min_turn_words <= n <= limits.max_turn_words:
            return Verdict("turn_length", f"turn {i + 1} has {n} words")
    tags = [tag for _, tag in tag_tokens(" ".join(turns))]
    cmi = code_mixing_index(tags)
    if not limits.min_cmi <= cmi <= limits.max_cmi:
        counts = Counter(tags)
        return Verdict(
            "code_mixing",
            f"CMI {cmi:.1f} outside [{limits.min_cmi:g}, {limits.max_cmi:g}] "
            f"(hi {counts[HI]}, en {counts[EN]}, both {counts[AMBIGUOUS]})",
        )
    messages = [
        {"role": "user" if s == "A" else "assistant", "content": t}
        for s, t in zip(speakers, turns, strict=True)
    ]
    return Verdict(None, text=text, messages=messages)
