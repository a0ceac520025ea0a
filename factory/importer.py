"""Bring data from elsewhere (JSONL, parquet, CSV, a Hugging Face dataset folder) into a run folder,
so `factory clean` and `factory export` treat it like answers kahani generated itself."""

import csv
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

from factory.errors import KahaniError
from factory.languages import Language
from factory.settings import RunConfig, save_config
from factory.store import Answer, RunStore

TEXT_COLUMNS = ("text", "story", "response", "completion")
CONVERSATION_COLUMNS = ("messages", "conversation")


def read_rows(path: Path) -> Iterator[tuple[int, dict | None, str]]:
    """(line or row number, row or None when unreadable, problem) for each input row."""
    if path.is_dir():
        import datasets

        try:
            loaded = datasets.load_from_disk(str(path))
        except FileNotFoundError:
            raise KahaniError(
                f"{path} is not a Hugging Face dataset folder (save_to_disk)"
            ) from None
        splits = loaded.values() if isinstance(loaded, datasets.DatasetDict) else [loaded]
        number = 0
        for split in splits:
            for row in split:
                number += 1
                yield number, row, ""
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        # Batch by batch: a file of millions of rows is never all in memory at once.
        batches = pq.ParquetFile(path).iter_batches(batch_size=4096)
        rows = (row for batch in batches for row in batch.to_pylist())
        for number, row in enumerate(rows, start=1):
            yield number, row, ""
    elif path.suffix in (".jsonl", ".json"):
        with path.open(encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    yield number, None, f"line {number} is not JSON: {err.msg}"
                    continue
                if not isinstance(row, dict):
                    yield number, None, f"line {number} is not a JSON object"
                    continue
                yield number, row, ""
    elif path.suffix == ".csv" and path.is_file():
        yield from _csv_rows(path)
    elif not path.exists():
        raise KahaniError(f"{path} does not exist")
    else:
        raise KahaniError(f"{path}: give a .jsonl, .parquet or .csv file or a dataset folder")


def _csv_rows(path: Path) -> Iterator[tuple[int, dict | None, str]]:
    """CSV with a header line; a row whose number of fields differs from the header's is
    unreadable (its values would land in the wrong columns)."""
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                return
            for row in reader:
                number = reader.line_num
                if not row:
                    continue
                if len(row) != len(header):
                    yield (
                        number,
                        None,
                        f"line {number} has {len(row)} fields where the header has {len(header)}",
                    )
                    continue
                yield number, dict(zip(header, row, strict=True)), ""
    except csv.Error as err:
        raise KahaniError(f"{path}:{reader.line_num}: not CSV: {err}") from None
    except UnicodeDecodeError as err:
        raise KahaniError(f"{path} is not UTF-8 text (byte {err.start})") from None


def answer_of(row: dict, language: Language, column: str | None) -> str:
    """The text to validate: a story as is, a conversation as the JSON the checks read."""
    names = (
        [column]
        if column
        else (
            CONVERSATION_COLUMNS + TEXT_COLUMNS if language.kind == "conversation" else TEXT_COLUMNS
        )
    )
    for name in names:
        if name in row and row[name] is not None:
            value = row[name]
            if name == "messages":
                turns = [
                    {"speaker": "A" if m["role"] == "user" else "B", "text": m["content"]}
                    for m in value
                    if m.get("role") != "system"
                ]
                return json.dumps({"conversation": turns}, ensure_ascii=False)
            if name == "conversation":
                return json.dumps({"conversation": value}, ensure_ascii=False)
            return str(value)
    raise KahaniError(
        f"no {' or '.join(names)} column; the columns found are: {', '.join(sorted(row))}"
    )


def import_file(
    path: Path, language: Language, run_dir: Path, column: str | None
) -> tuple[int, int]:
    """Copy rows into a new run folder's store; unreadable lines go straight to the rejects."""
    if (run_dir / "store.sqlite").exists():
        raise KahaniError(f"{run_dir} already holds a run; choose another --out")
    rows = list(read_rows(path))
    first = next((row for _, row, _ in rows if row is not None), None)
    if first is None:
        raise KahaniError(f"{path} holds no readable rows")
    answer_of(first, language, column)  # fail at once, naming the columns, if none fits
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise KahaniError(f"cannot create {run_dir}: {err.strerror}") from None
    save_config(run_dir, imported_config(path, language, run_dir.name, len(rows)))
    store = RunStore.open(run_dir / "store.sqlite", create=True)
    prompts, answers, corrupt = [], [], []
    now = time.time()
    for number, row, problem in rows:
        if row is None:
            corrupt.append((f"line-{number}", number, problem))
            continue
        prompt_id, variables, answer = imported_row(row, language, column, now)
        prompts.append((prompt_id, number, variables, [], f"import:{prompt_id}"))
        answers.append((prompt_id, answer))
    try:
        store.add_prompts(prompts)
        store.save_answers((pid, f"import:{pid}", answer) for pid, answer in answers)
        store.add_prompts((pid, n, {}, [], f"import:{pid}") for pid, n, _ in corrupt)
        for pid, _, problem in corrupt:
            store.save_failure(pid, 1, f"corrupt_line: {problem}")
    finally:
        store.close()
    return len(answers), len(corrupt)


def imported_row(
    row: dict, language: Language, column: str | None, now: float
) -> tuple[str, dict, Answer]:
    """(prompt id, variables, answer) of one readable input row, as the run store keeps it
    (`import_file` and the distributed clean's reader both build rows here)."""
    prompt_id = str(row.get("id") or _content_id(row))
    variables = row.get("variables") if isinstance(row.get("variables"), dict) else {}
    answer = Answer(
        text=answer_of(row, language, column),
        finish_reason=row.get("finish_reason"),
        prompt_tokens=0,
        completion_tokens=0,
        model=str(row.get("model") or "unknown"),
        provider="import",
        latency_s=None,
        attempts=1,
        started_at=now,
        finished_at=now,
    )
    return prompt_id, variables, answer


def imported_config(source: Path, language: Language, name: str, rows: int) -> RunConfig:
    """The config.json of a run folder made from data (`source`: where it came from)."""
    return RunConfig(
        name=name,
        lang=language.name,
        provider="import",
        model="unknown",
        template=source,  # where the data came from, for the dataset card
        n=max(1, rows),
    )


def _content_id(row: dict) -> str:
    digest = hashlib.blake2b(json.dumps(row, sort_keys=True, default=str).encode(), digest_size=8)
    return f"row-{digest.hexdigest()}"
