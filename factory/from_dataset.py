"""Prompts from a dataset (`factory generate --from-dataset PATH --template T.j2`): one prompt
per row, the template's variables filled from the row's columns, for translating, paraphrasing
or continuing existing texts.

`DatasetPromptSet` has `PromptSet`'s interface (`prompt(i)`, `take(n, start)`, `capacity`,
`check_count`), so generation, resume and the dry run take one path for both. Prompt i is row i
(the file's order; the seed plays no part). A prompt's id is the hash of the template's name and
the row's values, as for word lists, so the same row gets the same id however the file is
reordered, and an answer already paid for is never asked again. A row whose values are empty,
or that does not render, becomes an `InvalidRow` with its reason (`empty_row`,
`render_failed`), recorded as a reject, never a crash. A row the file itself cannot give (a
CSV line with the wrong number of fields, a JSONL line that is not JSON) stops the command
before anything is sent, naming the line: its values could be in the wrong columns.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from factory.errors import KahaniError
from factory.importer import read_rows
from factory.languages import Language
from factory.prompts import Message, Prompt, check_count, checked_overrides, prompt_id
from factory.templates import PromptTemplate, find_template
from factory.templates import shown as shown_path
from factory.textutil import nfc


@dataclass(frozen=True)
class InvalidRow:
    """A row that could not be made into a prompt."""

    id: str
    index: int
    variables: dict
    reason: str  # empty_row | render_failed
    detail: str

    @property
    def error(self) -> str:
        return f"{self.reason}: {self.detail}"


def count_rows(path: Path) -> int:
    """How many rows a dataset file holds (the default --n of a --from-dataset run)."""
    return sum(1 for _ in read_rows(path))


class DatasetPromptSet:
    """One prompt per row of a dataset file, in file order."""

    def __init__(
        self,
        language: Language,
        template: PromptTemplate,
        path: Path,
        column_map: dict[str, str] | None = None,
        overrides: dict[str, str] | None = None,
    ) -> None:
        self.language = language
        self.template = template
        self.path = path
        self.rows: list[tuple[int, dict]] = []
        columns: dict[str, None] = {}
        for number, row, problem in read_rows(path):
            if row is None:
                raise KahaniError(
                    f"{path}: {problem}; fix or remove that row (its values could be in the "
                    "wrong columns)"
                )
            self.rows.append((number, row))
            columns.update(dict.fromkeys(row))
        if not self.rows:
            raise KahaniError(f"{path} holds no rows")
        header = template.header
        self.constants = {**header.defaults, **checked_overrides(template, overrides or {})}
        needed = template.used_variables - self.constants.keys() - set(header.diversify)
        column_map = column_map or {}
        unknown = sorted(set(column_map) - template.used_variables)
        if unknown:
            raise KahaniError(
                f"--column-map {unknown[0]}: template {shown_path(template.path)} has no variable "
                f"{unknown[0]!r} (it has {', '.join(sorted(template.used_variables))})"
            )
        self.columns = {var: column_map.get(var, var) for var in sorted(needed)}
        for var, column in self.columns.items():
            if column not in columns:
                columns_found = ", ".join(list(columns)[:20])
                hint = (
                    f"map it with --column-map {var}=COLUMN"
                    if var == column
                    else f"--column-map {var}={column} names no column"
                )
                raise KahaniError(
                    f"template {shown_path(template.path)} uses {{{{ {var} }}}}, which is not a "
                    f"column of {path} (columns: {columns_found}); {hint}"
                )
        if not self.columns:
            raise KahaniError(f"template {template.path} uses no column of {path}; nothing to vary")

    @property
    def capacity(self) -> int:
        return len(self.rows)

    def describe_capacity(self) -> str:
        return f"{self.capacity:,} rows of {self.path.name}"

    def check_count(self, n: int, start: int = 0) -> None:
        check_count(n, start, self.capacity, f"{self.path} has {self.capacity:,} rows")

    def prompt(self, index: int) -> Prompt | InvalidRow:
        number, row = self.rows[index]
        variables = {var: _value(row.get(column)) for var, column in self.columns.items()}
        filled = {k: v for k, v in variables.items() if v is not None}
        values = {**filled, **self.constants}
        kind = self.language.kind
        pid = prompt_id(self.language.name, kind, self.template.name, values)
        empty = [self.columns[var] for var, v in variables.items() if v is None or v == ""]
        if empty:
            detail = f"row {number}: column {', '.join(empty)} is empty"
            return InvalidRow(pid, index, values, "empty_row", detail)
        try:
            content = self.template.render(values)
        except Exception as err:  # the user's template on the user's data: a reject, not a crash
            return InvalidRow(pid, index, values, "render_failed", f"row {number}: {err}")
        if not content:
            return InvalidRow(pid, index, values, "render_failed", f"row {number}: renders empty")
        messages = []
        if self.template.header.system:
            messages.append(Message(role="system", content=self.template.header.system.strip()))
        messages.append(Message(role="user", content=content))
        return Prompt(
            id=pid,
            index=index,
            language=self.language.name,
            kind=kind,
            template=self.template.name,
            variables=values,
            messages=messages,
        )

    def take(self, n: int, start: int = 0) -> Iterator[Prompt | InvalidRow]:
        self.check_count(n, start)
        for index in range(start, start + n):
            yield self.prompt(index)


def _value(value: object) -> str | int | None:
    """A cell as a template variable: text (NFC, stripped), a whole number, or JSON of
    anything else; None when missing."""
    if value is None:
        return None
    if isinstance(value, str):
        return nfc(value).strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def dataset_prompt_set(
    language: Language,
    path: Path,
    template: Path | None,
    column_map: dict[str, str] | None,
    overrides: dict[str, str] | None,
) -> DatasetPromptSet:
    if template is None:
        raise KahaniError(
            "--from-dataset needs --template: a template whose variables are the dataset's "
            "columns (shipped: translate/hindi.j2, translate/bangla.j2, translate/marathi.j2)"
        )
    return DatasetPromptSet(
        language, PromptTemplate(find_template(template)), path, column_map, overrides
    )
