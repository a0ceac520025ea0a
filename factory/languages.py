"""The languages kahani generates, with the script each must be written in."""

from dataclasses import dataclass

from factory.errors import KahaniError


@dataclass(frozen=True)
class Language:
    name: str  # the --lang value and the folder name under templates/ and vocab_lists/
    code: str  # BCP-47, for dataset cards
    script: str  # Unicode script name as `regex` knows it (\p{Script=...})
    kind: str  # "story" or "conversation": the template folder

    @property
    def html_lang(self) -> str:
        """A report page's `lang`: the language's code; Latin-script Hinglish is marked English
        so the browser picks Latin fonts and rules for it (its `hi-Latn` tag is unknown to many)."""
        return "en" if self.script == "Latin" else self.code


LANGUAGES: dict[str, Language] = {
    lang.name: lang
    for lang in [
        Language("hindi", "hi", "Devanagari", "story"),
        Language("marathi", "mr", "Devanagari", "story"),
        Language("bangla", "bn", "Bengali", "story"),
        Language("english", "en", "Latin", "story"),
        Language("hinglish", "hi-Latn", "Latin", "conversation"),
    ]
}


def get_language(name: str) -> Language:
    """Look a language up by its --lang name, or fail listing the ones that exist."""
    try:
        return LANGUAGES[name.strip().lower()]
    except KeyError:
        raise KahaniError(
            f"unknown language {name!r}; available: {', '.join(sorted(LANGUAGES))}"
        ) from None
