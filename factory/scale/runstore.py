"""The one place the distributed clean touches the run store (`store.sqlite`).

Nothing else in `factory/scale/` opens the store. When the store's API changes, these four
functions are what to retarget: three read (how much there is, where to cut it into tasks, one
task's answers) and one writes (a cleaned run's rows and verdicts, in prompt order). The raw
SQL below is what `RunStore` has no public method for yet: reading answers by index range and
saving answers in bulk (its `save_answer` commits, and so syncs to disk, once per answer).
"""

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from factory.clean import Judged, ensure_schema, failure_verdicts, replace_verdicts
from factory.store import Answer, Counts, RunStore


def answer_counts(run_dir: Path) -> Counts:
    """The run's prompt and token counts: the input a resumed distributed clean must match."""
    store = RunStore(run_dir / "store.sqlite")
    try:
        return store.counts()
    finally:
        store.close()


def answer_ranges(run_dir: Path, tasks: int) -> list[tuple[int, int]]:
    """[lo, hi) prompt-index ranges holding about the same number of answers, one per task."""
    store = RunStore(run_dir / "store.sqlite")
    try:
        (total,) = store.db.execute("SELECT COUNT(*) FROM responses").fetchone()
        cuts: list[int] = []
        wanted = [total * t // tasks for t in range(1, tasks)]
        indices = store.db.execute(
            "SELECT p.idx FROM responses r JOIN prompts p ON p.id = r.prompt_id ORDER BY p.idx"
        )
        for seen, (idx,) in enumerate(indices):
            while wanted and seen == wanted[0]:  # `seen` answers come before this one
                cuts.append(idx)
                wanted.pop(0)
        cuts += [2**62] * len(wanted)  # fewer answers than tasks: the last tasks get none
    finally:
        store.close()
    return list(pairwise([-(2**62), *cuts, 2**62]))


def read_answers(run_dir: Path, lo: int, hi: int) -> Iterator[tuple[str, int, dict, str, str]]:
    """(prompt id, index, variables, answer, finish reason) with lo <= index < hi, in order."""
    store = RunStore(run_dir / "store.sqlite")
    try:
        rows = store.db.execute(
            "SELECT p.id, p.idx, p.variables, r.text, r.finish_reason FROM responses r"
            " JOIN prompts p ON p.id = r.prompt_id WHERE p.idx >= ? AND p.idx < ? ORDER BY p.idx",
            (lo, hi),
        )
        for prompt_id, idx, variables, text, finish_reason in rows:
            yield prompt_id, idx, json.loads(variables), text, finish_reason
    finally:
        store.close()


@dataclass(frozen=True)
class CleanRow:
    """One input row as the write stage hands it over, in prompt order."""

    index: int
    judged: Judged
    # Rows read from files also bring what the importer would have stored for them:
    variables: dict | None = None
    answer: Answer | None = None
    failure: str | None = None  # "corrupt_line: ..." for an unreadable line


def save_cleaned(run_dir: Path, rows: Callable[[], Iterator[CleanRow]], imported: bool) -> None:
    """Write a cleaned run: for files, the prompts, answers and failures as `import_file` does;
    then every verdict, replacing the old ones in one transaction as `clean_store` does.

    `rows` is called once per pass. Each pass is idempotent, so a write killed half-way and
    started again leaves the same store as one that ran once.
    """
    store = RunStore(run_dir / "store.sqlite")
    db = store.db
    try:
        ensure_schema(db)
        if imported:
            store.add_prompts(
                (r.judged.prompt_id, r.index, r.variables or {}, [], f"import:{r.judged.prompt_id}")
                for r in rows()
            )
            failures = []  # unreadable lines: few, each saved as the importer saves it
            with db:
                db.execute("BEGIN IMMEDIATE")
                for r in rows():
                    if r.answer is not None:
                        _save_answer(db, r.judged.prompt_id, r.answer)
                    elif r.failure is not None:
                        failures.append((r.judged.prompt_id, r.failure))
            for prompt_id, failure in failures:
                store.save_failure(prompt_id, 1, failure)
        answered = (r.judged for r in rows() if r.failure is None)
        # Failures last, as clean_store appends them: a failed prompt's verdict says why.
        replace_verdicts(db, _then(answered, lambda: failure_verdicts(db)))
    finally:
        store.close()


def _save_answer(db, prompt_id: str, answer: Answer) -> None:
    """`RunStore.save_answer` without its own transaction, so a million answers commit once."""
    db.execute(
        "INSERT OR REPLACE INTO responses VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            prompt_id,
            f"import:{prompt_id}",
            answer.text,
            answer.finish_reason,
            answer.prompt_tokens,
            answer.completion_tokens,
            answer.model,
            answer.provider,
            int(answer.batch),
            answer.latency_s,
            answer.attempts,
            answer.started_at,
            answer.finished_at,
        ),
    )
    db.execute(
        "UPDATE prompts SET status='done', attempts=?, last_error=NULL WHERE id=?",
        (answer.attempts, prompt_id),
    )


def _then(first: Iterator[Judged], rest: Callable[[], list[Judged]]) -> Iterator[Judged]:
    yield from first
    yield from rest()
