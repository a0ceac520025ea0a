"""Prompt templates: each renders for its language, declares its shape, and is sandboxed."""

import json

import pytest
import regex

from factory.errors import KahaniError
from factory.languages import LANGUAGES, get_language
from factory.paths import TEMPLATES_DIR, VOCAB_DIR
from factory.prompts import PromptSet
from factory.templates import PromptTemplate, template_path

SCRIPT_LETTER = {
    script: regex.compile(rf"\p{{Script={script}}}") for script in ("Devanagari", "Bengali")
}


def shipped(lang: str) -> PromptSet:
    language = get_language(lang)
    path = template_path(TEMPLATES_DIR, language.kind, lang)
    return PromptSet(language, PromptTemplate(path), VOCAB_DIR / lang, seed=0)


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_every_shipped_template_renders_with_its_word_lists(lang):
    prompt = shipped(lang).prompt(0)
    user = prompt.messages[-1].content
    assert "{{" not in user and "{%" not in user
    for var, value in prompt.variables.items():
        if var != "turns":
            assert str(value) in user, var


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_every_template_declares_its_json_shape_and_an_answer_in_that_shape(lang):
    header = shipped(lang).template.header
    assert header.json_key and header.json_key in header.json_shape
    example = json.loads(header.example_output)
    assert list(example) == [header.json_key]


@pytest.mark.parametrize("lang", ["hindi", "marathi", "bangla"])
def test_story_prompts_carry_words_in_their_own_script(lang):
    prompt = shipped(lang).prompt(5)
    script = LANGUAGES[lang].script
    words = [prompt.variables[v] for v in ("noun", "verb", "adjective")]
    assert all(SCRIPT_LETTER[script].search(w) for w in words)
    other = "Devanagari" if script == "Bengali" else "Bengali"
    assert not SCRIPT_LETTER[other].search(prompt.messages[-1].content)


def test_bangla_template_asks_for_bengali_script_and_its_example_is_bengali():
    prompt_set = shipped("bangla")
    assert "Bengali script" in prompt_set.prompt(0).messages[-1].content
    example = prompt_set.template.header.example_output
    assert SCRIPT_LETTER["Bengali"].search(example)
    assert not SCRIPT_LETTER["Devanagari"].search(example)


def test_hinglish_conversation_has_two_different_personas_and_a_turn_count():
    prompt_set = shipped("hinglish")
    for i in range(30):
        variables = prompt_set.prompt(i).variables
        assert variables["speaker_a"] != variables["speaker_b"]
        assert variables["turns"] == 6


def test_a_user_template_without_header_maps_variables_to_lists(tmp_path):
    own = tmp_path / "fable.j2"
    own.write_text("Write a fable about a {{ adjective }} {{ noun }}.", encoding="utf-8")
    prompt_set = PromptSet(get_language("hindi"), PromptTemplate(own), VOCAB_DIR / "hindi")
    assert prompt_set.unique == ["adjective", "noun"]
    assert prompt_set.prompt(0).messages[-1].content.startswith("Write a fable about a ")


def test_the_sandbox_refuses_to_reach_python_internals(tmp_path):
    evil = tmp_path / "evil.j2"
    evil.write_text("{{ noun.__class__.__mro__[1].__subclasses__() }}", encoding="utf-8")
    prompt_set = PromptSet(get_language("hindi"), PromptTemplate(evil), VOCAB_DIR / "hindi")
    with pytest.raises(KahaniError, match="cannot render"):
        prompt_set.prompt(0)


def test_a_syntax_error_names_file_and_line(tmp_path):
    broken = tmp_path / "broken.j2"
    broken.write_text("line one\nline two {{ noun | }}\nline three", encoding="utf-8")
    with pytest.raises(KahaniError, match=r"broken\.j2:2: template syntax error"):
        PromptTemplate(broken)
