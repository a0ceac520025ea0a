"""The validators, language by language: what passes, what is rejected, and why."""

import json
import unicodedata
from pathlib import Path

import pytest

from factory.languages import get_language
from factory.textutil import words
from factory.validate import (
    Limits,
    check_conversation,
    check_story,
    contains_word,
    extract_json,
    repeated_trigram_share,
)

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
STORY_LANGUAGES = ["hindi", "marathi", "bangla", "english"]


def fixture(lang: str) -> list[dict]:
    return [json.loads(line) for line in (CORPUS / f"{lang}.jsonl").read_text().splitlines()]


def story(lang: str, text: str, variables: dict | None = None, finish: str | None = "stop"):
    return check_story(text, finish, variables or {}, get_language(lang), None, Limits())


@pytest.mark.parametrize("lang", STORY_LANGUAGES)
def test_every_fixture_story_passes(lang):
    verdicts = {r["id"]: story(lang, r["text"], r["variables"]) for r in fixture(lang)}
    assert {k: (v.reason, v.detail) for k, v in verdicts.items() if not v.ok} == {}


@pytest.mark.parametrize(
    ("lang", "other"),
    [("hindi", "bangla"), ("marathi", "english"), ("bangla", "hindi"), ("english", "marathi")],
)
def test_a_story_in_another_script_is_rejected_not_stripped(lang, other):
    text = fixture(other)[0]["text"]
    verdict = story(lang, text)
    assert verdict.reason == "wrong_script"
    assert verdict.text == ""  # nothing was filtered down into a "story"


def test_bangla_needs_bengali_script_not_devanagari():
    hindi_story = fixture("hindi")[3]["text"]
    assert story("bangla", hindi_story).reason == "wrong_script"
    assert story("bangla", fixture("bangla")[3]["text"]).ok


def test_a_few_english_words_in_a_hindi_story_are_tolerated():
    text = fixture("hindi")[0]["text"] + " OK bye."
    assert story("hindi", text, fixture("hindi")[0]["variables"]).ok


@pytest.mark.parametrize("lang", STORY_LANGUAGES)
def test_length_bounds_in_words(lang):
    first = fixture(lang)[0]
    short = " ".join(first["text"].split()[:20])
    assert story(lang, short).reason == "too_short"
    assert (
        check_story(
            first["text"], "stop", {}, get_language(lang), None, Limits(max_words=50)
        ).reason
        == "too_long"
    )


@pytest.mark.parametrize("lang", STORY_LANGUAGES)
def test_truncated_answers_are_rejected(lang):
    assert story(lang, fixture(lang)[1]["text"], finish="length").reason == "truncated"


@pytest.mark.parametrize("lang", STORY_LANGUAGES)
def test_a_missing_required_word_is_named(lang):
    record = fixture(lang)[2]
    other = next(r for r in fixture(lang) if r["variables"]["adjective"] not in record["text"])
    variables = dict(record["variables"], adjective=other["variables"]["adjective"])
    verdict = story(lang, record["text"], variables)
    assert verdict.reason == "missing_adjective"
    assert other["variables"]["adjective"] in verdict.detail


@pytest.mark.parametrize(
    ("lang", "entry", "text"),
    [
        ("hindi", "खेलना", "बच्चे बगीचे में खेल रहे थे"),
        ("hindi", "लड़का", "दो लड़के दौड़ रहे थे"),
        ("hindi", "छोटा", "एक छोटी चिड़िया आई"),
        ("marathi", "खेळणे", "मुले अंगणात खेळत होती"),
        ("bangla", "দৌড়ানো", "ছেলেটি মাঠে দৌড়াচ্ছে"),
        ("english", "run", "the dog ran home"),
        ("english", "happy", "she was happier than ever"),
        ("english", "ice cream", "they ate ice creams"),
    ],
)
def test_required_words_match_inflected_forms(lang, entry, text):
    assert contains_word(words(text), entry, lang)


def test_required_words_do_not_match_unrelated_words():
    assert not contains_word(words("बच्चे बगीचे में दौड़ रहे थे"), "खेलना", "hindi")
    assert not contains_word(words("they ate cake"), "ice cream", "english")


@pytest.mark.parametrize(
    "text",
    [
        "As an AI language model, I cannot write that story.",
        "Here is your story: Once there was a cat.",
        "यहाँ आपकी कहानी है: एक बार एक बिल्ली थी।",
        "এখানে আপনার গল্প: একটি বিড়াল ছিল।",
    ],
)
def test_refusals_and_meta_text_are_rejected(text):
    lang = "english" if text.isascii() else ("bangla" if "গল্প" in text else "hindi")
    assert story(lang, text * 10).reason == "meta_text"


def test_degenerate_loops_are_rejected():
    loop = "the cat sat on the mat and looked at the moon. " * 15
    assert repeated_trigram_share(words(loop)) > 0.8
    assert story("english", loop).reason == "degenerate"
    assert repeated_trigram_share(words(fixture("english")[0]["text"])) < 0.1


def test_forbidden_words_are_rejected():
    record = fixture("english")[0]
    first_word = words(record["text"])[3]
    verdict = check_story(
        record["text"], "stop", {}, get_language("english"), None, Limits(), [first_word]
    )
    assert verdict.reason == "forbidden_word"


@pytest.mark.parametrize(
    "answer",
    [
        '{"story": "X"}',
        'Sure! Here you go:\n```json\n{"story": "X"}\n```\nHope you like it.',
        'Some text {"story": "X"} more text',
        '{"title": "t", "story": "X"}',
    ],
)
def test_json_is_found_in_fences_and_surrounding_text(answer):
    assert extract_json(answer, "story") == ("X", "")


def test_json_without_the_expected_key_says_which_keys_it_had():
    value, problem = extract_json('{"kahani": "X"}', "story")
    assert value is None and "kahani" in problem


def test_precomposed_and_decomposed_nukta_give_the_same_nfc_story():
    record = fixture("hindi")[4]
    precomposed = record["text"].replace("\u0921\u093c", "\u095c").replace("\u091c\u093c", "\u095b")
    assert precomposed != record["text"]
    verdict = story("hindi", precomposed, record["variables"])
    assert verdict.ok and verdict.text == record["text"]
    assert unicodedata.is_normalized("NFC", verdict.text)


def conversation(turns: list[tuple[str, str]], asked: int | None = None, **limits):
    answer = json.dumps({"conversation": [{"speaker": s, "text": t} for s, t in turns]})
    variables = {"turns": asked if asked is not None else len(turns)}
    return check_conversation(answer, "stop", variables, "conversation", Limits(**limits))


def test_fixture_conversations_pass_and_become_chat_messages():
    records = fixture("hinglish")
    passed = 0
    for record in records:
        turns = [("A" if m["role"] == "user" else "B", m["content"]) for m in record["messages"]]
        verdict = conversation(turns)
        passed += verdict.ok
        if verdict.ok:
            assert verdict.messages == record["messages"]
    assert passed >= 0.9 * len(records)


def test_conversation_turns_must_alternate_from_a_and_match_the_count():
    good = [("A", "Kal movie chalein? Weekend pe free hoon."), ("B", "Haan yaar, plan karte hain.")]
    assert conversation(good).ok
    assert conversation([good[1], good[0]]).reason == "bad_turns"
    assert conversation(good, asked=4).reason == "bad_turns"


def test_devanagari_in_a_romanized_conversation_is_rejected():
    turns = [("A", "Kal movie chalein? मैं free hoon."), ("B", "Haan yaar, plan karte hain.")]
    assert conversation(turns).reason == "wrong_script"


def test_a_conversation_without_code_mixing_is_rejected():
    english = [("A", "Shall we watch a movie tomorrow evening?"), ("B", "Yes, that sounds good.")]
    hindi = [("A", "Kal hum kahan chalenge yaar?"), ("B", "Pata nahi, tum batao na.")]
    assert conversation(english).reason == "code_mixing"
    assert conversation(hindi).reason == "code_mixing"
    assert "CMI 0.0" in conversation(english).detail


def test_turn_length_is_bounded():
    turns = [("A", "Hi"), ("B", "Haan yaar, kal ka plan kya hai? Movie chalein?")]
    assert conversation(turns).reason == "turn_length"
