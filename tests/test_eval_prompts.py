"""The shipped evaluation prompts: enough of them, clean text in the right script, and never
taken from the training material they are meant to test against."""

import json
import unicodedata
from pathlib import Path

import pytest
import regex

from factory.languages import LANGUAGES
from judge.prompts_io import PROMPTS_DIR, load_prompts

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
LETTERS = {
    "Devanagari": r"\p{Script=Devanagari}",
    "Bengali": r"\p{Script=Bengali}",
    "Latin": r"[A-Za-z]",
}


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_each_language_has_at_least_200_clean_prompts_in_its_script(lang):
    prompts = [p["prompt"] for p in load_prompts(lang, None, None)]
    assert len(prompts) >= 200 and len(set(prompts)) == len(prompts)
    script = LANGUAGES[lang].script
    for text in prompts:
        assert unicodedata.is_normalized("NFC", text)
        letters = regex.findall(r"\p{L}", text)
        assert all(regex.match(LETTERS[script], ch) for ch in letters), text


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_prompts_are_not_taken_from_the_training_fixtures(lang):
    fixture = CORPUS / f"{lang}.jsonl"
    texts = [json.loads(x)["text"] for x in fixture.read_text(encoding="utf-8").splitlines()]
    for prompt in load_prompts(lang, None, None):
        assert not any(prompt["prompt"] in text for text in texts), prompt["prompt"]


def test_every_prompt_file_is_shipped_as_package_data():
    pyproject = (Path(__file__).parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert '"prompts/*.txt"' in pyproject
    assert sorted(p.stem for p in PROMPTS_DIR.glob("*.txt")) == sorted(LANGUAGES)
