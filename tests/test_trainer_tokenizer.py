"""Tokenizers keep Indic letters with their marks and decode exactly what they encoded."""

import re
import unicodedata
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli
from tests.trainer_helpers import CORPUS, corpus_texts
from trainer.tokenizer import WORD, load_tokenizer, save_tokenizer, train_char

pytest_plugins = ["tests.trainer_helpers"]  # fixtures: tok_dir, hindi_data, pretrained_run

SAMPLES = [
    "राजा ने क़िले की ज़मीन पर फ़र्श देखा।",
    "\u0915\u093c\u093f\u0932\u093e and \u0958\u093f\u0932\u093e",  # nukta: both spellings
    "আমি বাড়ি যাই, \u09af\u09bc \u09df \u09dc কাল দেখা হবে।",  # Bengali য় and ড়, both spellings
    "kya haal hai bhai? sab theek 👍  see you kal!",
    "मराठी: र्‍हस्व, त्र्यंबक  \n\n  tabs\tand   spaces ० १२३",
]
INDIC_AND_LATIN = (
    "".join(chr(c) for c in [*range(0x0900, 0x0980), *range(0x0980, 0x0A00), *range(0x20, 0x7F)])
    + "\n\u200c\u200d"
)


def roundtrip(tok_path: Path, text: str) -> str:
    tok = load_tokenizer(tok_path)
    return tok.decode(tok.encode_batch([text])[0])


def test_bpe_round_trips_devanagari_bengali_hinglish_and_nukta_forms(tok_dir):
    for text in SAMPLES:
        assert roundtrip(tok_dir, text) == unicodedata.normalize("NFC", text)


@settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet=INDIC_AND_LATIN, max_size=40))
def test_bpe_round_trips_any_indic_or_latin_text(tok_dir, text):
    assert roundtrip(tok_dir, text) == unicodedata.normalize("NFC", text)


def test_text_spelling_special_tokens_is_encoded_as_text(tok_dir):
    tok = load_tokenizer(tok_dir)
    for text in ("<pad>", "kahani <eos> khatam", "<|user|> hi"):
        ids = tok.encode_batch([text])[0]
        assert not set(ids) & set(tok.hf.all_special_ids)
        assert tok.decode(ids) == text


def test_char_tokenizer_round_trips_and_has_one_token_per_known_character(tmp_path):
    save_tokenizer(train_char(corpus_texts("hindi", "bangla"), 400), tmp_path)
    tok = load_tokenizer(tmp_path)
    for text in SAMPLES:
        assert tok.decode(tok.encode_batch([text])[0]) == unicodedata.normalize("NFC", text)
    assert len(tok.encode_batch(["राजा"])[0]) == 4


def test_pre_tokenizer_never_cuts_a_word_at_its_vowel_signs(tok_dir):
    pre = load_tokenizer(tok_dir).hf.backend_tokenizer.pre_tokenizer
    words = {w for text in corpus_texts("hindi", "marathi", "bangla") for w in WORD.findall(text)}
    assert len(words) > 500
    for word in words:
        assert [piece for piece, _ in pre.pre_tokenize_str(word)] == [word]


def test_hindi_fertility_under_two_tokens_per_word_at_8k(tmp_path):
    result = run_cli(
        "trainer",
        "tokenizer",
        str(CORPUS / "hindi.jsonl"),
        "--vocab",
        "8000",
        "--out",
        str(tmp_path / "tok"),
    )
    assert result.returncode == 0, result.stderr
    fertility = float(re.search(r"([\d.]+) tokens/word", result.stdout).group(1))
    assert fertility < 2.0, result.stdout


def test_any_hugging_face_tokenizer_directory_loads(tok_dir, tmp_path):
    result = run_cli(
        "trainer",
        "tokenizer",
        str(CORPUS / "english.jsonl"),
        "--kind",
        "hf",
        "--base",
        str(tok_dir),
        "--out",
        str(tmp_path / "copy"),
    )
    assert result.returncode == 0, result.stderr
    assert load_tokenizer(tmp_path / "copy").vocab_size == load_tokenizer(tok_dir).vocab_size
