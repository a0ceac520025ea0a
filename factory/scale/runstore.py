"""The one place the distributed clean touches the run store (`store.sqlite`).

Nothing else in `factory/scale/` opens the store, and this module speaks no SQL: it asks
`factory.store.RunStore` through its named queries. Three functions read (how much there is,
where to cut it into tasks, one task's answers) and one writes (a cleaned run's rows and
verdicts, in prompt order).
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain, pairwise
from pathlib import Path

from factory.clean import failure_rows
from factory.store import Answer, Counts, RunStore, VerdictRow


def answer_counts(run_dir: Path) -> Counts:
    """The run's prompt and token counts: the input a resumed distributed clean must match."""
    store = RunStore.open(run_dir / "store.sqlite")
    try:
        return store.counts()
    finally:
        store.close()


def answer_ranges(run_dir: Path, tasks: int) -> list[tuple[int, int]]:
    """[lo, hi) prompt-index ranges holding about the same number of answers, one per task."""
    store = RunStore.open(run_dir / "store.sqlite")
    try:
        total = store.answer_count()
        cuts: list[int] = []
        wanted = [total * t // tasks for t in range(1, tasks)]
        for seen, idx in enumerate(store.answer_indices()):
            while wanted and seen == wanted[0]:  # `seen` answers come before this one
                cuts.append(idx)
                wanted.pop(0)
        cuts += [2**62] * len(wanted)  # fewer answers than tasks: the last tasks get none
    finally:
        store.close()
    return list(pairwise([-(2**62), *cuts, 2**62]))


def read_answers(run_dir: Path, lo: int, hi: int) -> Iterator[tuple[str, int, dict, str, str]]:
    """(prompt id, index, variables, answer, finish reason) with lo <= index < hi, in order."""
    store = RunStore.open(run_dir / "store.sqlite")
    try:
        yield from store.answers_between(lo, hi)
    finally:
        store.close()


@dataclass(frozen=True)
class CleanRow:
    """One input row as the write stage hands it over, in prompt order."""

    index: int
    verdict: VerdictRow
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
    store = RunStore.open(run_dir / "store.sqlite", create=imported, write=True)
    try:
        if imported:
            store.add_prompts(
                (pid, r.index, r.variables or {}, [], f"import:{pid}")
                for r in rows()
                for pid in [r.verdict.prompt_id]
            )
            failures: list[tuple[str, str]] = []  # unreadable lines: few, saved one by one

            def answers() -> Iterator[tuple[str, str, Answer]]:
                for r in rows():
                    if r.answer is not None:
                        yield r.verdict.prompt_id, f"import:{r.verdict.prompt_id}", r.answer
                    elif r.failure is not None:
                        failures.append((r.verdict.prompt_id, r.failure))

            store.save_answers(answers())  # one transaction, however many rows
            for prompt_id, failure in failures:
                store.save_failure(prompt_id, 1, failure)
        store.replace_grades([], None)  # as clean_store without a judge: grades are derived
        answered = (r.verdict for r in rows() if r.failure is None)
        # Failures last, as clean_store appends them: a failed prompt's verdict says why.
        store.replace_verdicts(chain(answered, failure_rows(store)))
    finally:
        store.close()
