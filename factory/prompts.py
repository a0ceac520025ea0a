"""Prompt sets: a template, its word lists and a seed give prompt i for any i, in O(1)."""

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from factory.errors import KahaniError
from factory.languages import Language
from factory.paths import TEMPLATES_DIR, VOCAB_DIR
from factory.sampler import ComboSampler, Slot
from factory.templates import PromptTemplate, find_template, template_path
from factory.vocab import load_lists


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class Prompt(BaseModel):
    """One line of a prompts JSONL file (see ARCHITECTURE.md)."""

    model_config = ConfigDict(extra="forbid")

    id: str  # "<language>-<kind>-<16 hex>": a hash of template name and variables
    index: int  # position in the seeded order; prompt `index` of the same set is this one
    language: str
    kind: str
    template: str
    variables: dict[str, str | int]
    messages: list[Message]


def prompt_id(language: str, kind: str, template: str, variables: dict[str, str | int]) -> str:
    """Stable id: the same template and words give the same id, whatever the seed or index."""
    key = json.dumps([template, variables], sort_keys=True, ensure_ascii=False)
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).hexdigest()
    return f"{language}-{kind}-{digest}"


class PromptSet:
    """All unique prompts of one language and template, in a seeded order."""

    def __init__(
        self,
        language: Language,
        template: PromptTemplate,
        vocab_dir: Path,
        seed: int = 0,
        overrides: dict[str, str] | None = None,
        diversify: bool = False,
    ) -> None:
        self.language = language
        self.template = template
        self.seed = seed
        header = template.header
        if diversify and not header.diversify:
            raise KahaniError(
                f"--diversify: template {template.path} declares no slots to draw "
                "(a `diversify:` map of variable -> word list in its header)"
            )
        self.constants: dict[str, str | int] = {
            **header.defaults,
            **checked_overrides(template, overrides or {}),
        }
        # Header order is the author's order (noun, verb, adjective); inferred ones are sorted.
        sources = header.variables or _infer_sources(template, vocab_dir)
        # Diversity slots are free draws after the template's own, so the words of the other
        # slots stay what they were; without --diversify they are left undefined.
        sources = {**sources, **(header.diversify if diversify else {})}
        optional = set(header.diversify)
        missing = sorted(
            template.used_variables - sources.keys() - self.constants.keys() - optional
        )
        if missing:
            raise KahaniError(
                f"template {template.path} needs {', '.join(missing)}, which no word list in "
                f"{vocab_dir} or --var gives"
            )
        self.sources = {v: name for v, name in sources.items() if v not in self.constants}
        if not self.sources:
            raise KahaniError(f"template {template.path} uses no word list; nothing to vary")
        unique = (
            header.unique
            if header.unique is not None
            else [v for v in self.sources if v not in optional]
        )
        unknown = sorted(set(unique) - self.sources.keys())
        if unknown:
            raise KahaniError(f"{template.path}: unique names {', '.join(unknown)}, not a list")
        self.unique = [v for v in self.sources if v in unique]
        self.lists = load_lists(vocab_dir, set(self.sources.values()))
        slots = [Slot(name, len(self.lists[name]), v in unique) for v, name in self.sources.items()]
        try:
            self.sampler = ComboSampler(slots, seed)
        except ValueError as err:
            raise KahaniError(f"{template.path}: {err}") from None

    @property
    def capacity(self) -> int:
        """How many distinct prompts exist: the product of the unique lists' sizes."""
        return self.sampler.capacity

    def describe_capacity(self) -> str:
        return f"{self.capacity:,} unique ({', '.join(self.unique)}) combinations"

    def prompt(self, index: int) -> Prompt:
        if not 0 <= index < self.capacity:
            raise KahaniError(f"prompt index {index} is outside 0..{self.capacity - 1}")
        choices = self.sampler.draw(index)
        variables: dict[str, str | int] = {
            var: self.lists[name][choice]
            for (var, name), choice in zip(self.sources.items(), choices, strict=True)
        }
        variables.update(self.constants)
        messages = []
        if self.template.header.system:
            messages.append(Message(role="system", content=self.template.header.system.strip()))
        messages.append(Message(role="user", content=self.template.render(variables)))
        kind = self.language.kind
        return Prompt(
            id=prompt_id(self.language.name, kind, self.template.name, variables),
            index=index,
            language=self.language.name,
            kind=kind,
            template=self.template.name,
            variables=variables,
            messages=messages,
        )

    def check_count(self, n: int, start: int = 0) -> None:
        what = f"only {self.describe_capacity()} exist for {self.language.name}"
        check_count(n, start, self.capacity, what)

    def take(self, n: int, start: int = 0) -> Iterator[Prompt]:
        self.check_count(n, start)
        for index in range(start, start + n):
            yield self.prompt(index)


def check_count(n: int, start: int, capacity: int, what: str) -> None:
    """Fail at once, naming the maximum, when n prompts from `start` do not exist."""
    if n < 1:
        raise KahaniError(f"--n must be at least 1, got {n}")
    if start < 0:
        raise KahaniError(f"--start must be at least 0, got {start}")
    if start + n > capacity:
        raise KahaniError(
            f"asked for {n:,} prompts from index {start:,} but {what}; "
            f"the maximum is --n {max(capacity - start, 0):,}"
        )


def prompt_set(
    language: Language,
    template: Path | None = None,
    vocab_dir: Path | None = None,
    seed: int = 0,
    overrides: dict[str, str] | None = None,
    diversify: bool = False,
) -> PromptSet:
    """A language's prompt set: the shipped template and word lists unless others are given.
    `diversify` also draws the template's diversity slots (setting, names, style, device)."""
    if template is not None:
        template = find_template(template)
    if vocab_dir is not None and not vocab_dir.is_dir():
        raise KahaniError(f"word-list folder {vocab_dir} does not exist")
    return PromptSet(
        language,
        PromptTemplate(template or template_path(TEMPLATES_DIR, language.kind, language.name)),
        vocab_dir or VOCAB_DIR / language.name,
        seed=seed,
        overrides=overrides,
        diversify=diversify,
    )


def _infer_sources(template: PromptTemplate, vocab_dir: Path) -> dict[str, str]:
    """Header-less templates: variable `noun` reads `nouns.txt`, else `noun.txt`."""
    sources = {}
    for var in sorted(template.used_variables):
        for stem in (f"{var}s", var):
            if (vocab_dir / f"{stem}.txt").is_file():
                sources[var] = stem
                break
    return sources


def checked_overrides(template: PromptTemplate, overrides: dict[str, str]) -> dict[str, str | int]:
    """`--var` values the template can use: its own variables only, and a number where the
    template's default is one (`--var turns=abc` fails here, before anything is sent)."""
    known = template.used_variables | set(template.header.defaults)
    checked: dict[str, str | int] = {}
    for key, value in overrides.items():
        if key not in known:
            raise KahaniError(
                f"--var {key}: template {template.path.name} has no variable {key!r} "
                f"(it has {', '.join(sorted(known))})"
            )
        if isinstance(template.header.defaults.get(key), int):
            try:
                checked[key] = int(value)
            except ValueError:
                default = template.header.defaults[key]
                raise KahaniError(
                    f"--var {key}: expects a whole number like the default {default}, got {value!r}"
                ) from None
            if checked[key] < 1:
                raise KahaniError(f"--var {key}: must be at least 1, got {value!r}")
        else:
            checked[key] = value
    return checked


def parse_overrides(pairs: list[str], flag: str = "--var") -> dict[str, str]:
    """`--var key=value` pairs (or another flag's) into a dict."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise KahaniError(f"{flag} expects key=value, got {pair!r}")
        out[key.strip()] = value
    return out
