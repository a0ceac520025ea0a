"""`factory clean`: validate every raw answer, remove duplicates, record every rejection.

Verdicts live in the run store's `verdicts` table, one row per answer: accepted rows hold
the clean text, rejected rows a reason code and a detail (the rejects table is the view
`rejects`). Verdicts are derived data: cleaning again recomputes them, and no raw answer
is ever changed or deleted.
"""

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from factory.dedup import Deduplicator
from factory.errors import KahaniError
from factory.languages import Language, get_language
from factory.runconfig import RunConfig
from factory.templates import PromptTemplate
from factory.validate import Limits, Verdict, check_conversation, check_story

SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    prompt_id TEXT PRIMARY KEY,
    reason TEXT,            -- NULL: accepted; else a reason code (no_json, wrong_script, ...)
    detail TEXT NOT NULL,   -- what exactly was wrong, for people
    text TEXT NOT NULL,     -- the clean story, or the conversation as "A: ..." lines
    messages TEXT,          -- JSON chat messages (conversations)
    duplicate_of TEXT,      -- the kept prompt id, for duplicates
    similarity REAL         -- Jaccard similarity to it (1.0 for exact duplicates)
);
CREATE VIEW IF NOT EXISTS rejects AS
    SELECT prompt_id, reason, detail FROM verdicts WHERE reason IS NOT NULL;
"""


@dataclass(frozen=True)
class Judged:
    """One answer with what the checks and the deduplication said about it."""

    prompt_id: str
    verdict: Verdict
    duplicate_of: str | None = None
    similarity: float | None = None


class Cleaner:
    """The checks for one run: its language, the JSON key answers hold, forbidden words."""

    def __init__(
        self,
        language: Language,
        json_key: str | None,
        forbidden: list[str],
        limits: Limits,
        json_required: bool = True,
    ) -> None:
        self.language = language
        self.json_key = json_key
        self.forbidden = forbidden
        self.limits = limits
        self.json_required = json_required

    @classmethod
    def for_run(cls, config: RunConfig, limits: Limits) -> "Cleaner":
        """A generation run's answers hold the JSON its template asked for."""
        language = get_language(config.language)
        if config.provider == "import":
            # Imported stories are usually plain text; a JSON answer is unwrapped if present.
            key = "conversation" if language.kind == "conversation" else "story"
            return cls(language, key, [], limits, json_required=False)
        header = PromptTemplate(Path(config.template)).header
        return cls(language, header.json_key, header.forbidden, limits)

    def check(self, answer: str, finish_reason: str | None, variables: dict) -> Verdict:
        if self.language.kind == "conversation":
            return check_conversation(answer, finish_reason, variables, self.json_key, self.limits)
        return check_story(
            answer,
            finish_reason,
            variables,
            self.language,
            self.json_key,
            self.limits,
            self.forbidden,
            self.json_required,
        )


def ensure_schema(db: sqlite3.Connection) -> None:
    db.executescript(SCHEMA)


def save_verdict(db: sqlite3.Connection, judged: Judged) -> None:
    v = judged.verdict
    db.execute(
        "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            judged.prompt_id,
            v.reason,
            v.detail,
            v.text,
            json.dumps(v.messages, ensure_ascii=False) if v.messages else None,
            judged.duplicate_of,
            judged.similarity,
        ),
    )


def clean_store(db: sqlite3.Connection, cleaner: Cleaner, threshold: float) -> Counter[str]:
    """Judge every answer of a run in prompt order; returns counts by reason ("ok" = kept)."""
    ensure_schema(db)
    rows = db.execute(
        "SELECT p.id, p.variables, r.text, r.finish_reason FROM responses r"
        " JOIN prompts p ON p.id = r.prompt_id ORDER BY p.idx"
    ).fetchall()
    dedup = Deduplicator(threshold=threshold)
    judged = []
    for prompt_id, variables, answer, finish_reason in rows:
        verdict = cleaner.check(answer, finish_reason, json.loads(variables))
        if not verdict.ok:
            judged.append(Judged(prompt_id, verdict))
            continue
        seen = dedup.add(prompt_id, verdict.text)
        if seen.status == "kept":
            judged.append(Judged(prompt_id, verdict))
        else:
            kind = "duplicate" if seen.status == "exact_duplicate" else "near_duplicate"
            dup = duplicate_judged(prompt_id, verdict, kind, seen.duplicate_of, seen.jaccard)
            judged.append(dup)
    judged.extend(failure_verdicts(db))
    replace_verdicts(db, judged)
    return Counter(j.verdict.reason or "ok" for j in judged)


def duplicate_judged(
    prompt_id: str, verdict: Verdict, kind: str, duplicate_of: str, similarity: float
) -> Judged:
    """A valid answer rejected as a `duplicate` or `near_duplicate` of the kept `duplicate_of`."""
    detail = f"{kind.replace('_', ' ')} of {duplicate_of} (Jaccard {similarity:.2f})"
    rejected = Verdict(kind, detail, text=verdict.text, messages=verdict.messages)
    return Judged(prompt_id, rejected, duplicate_of, similarity)


def failure_verdicts(db: sqlite3.Connection) -> list[Judged]:
    """Prompts that never got an answer are missing from the dataset too: say why."""
    judged = []
    for prompt_id, error in db.execute(
        "SELECT id, last_error FROM prompts WHERE status = 'failed' ORDER BY idx"
    ):
        reason, _, detail = (error or "").partition(": ")
        if reason != "corrupt_line":
            reason, detail = "request_failed", error or ""
        judged.append(Judged(prompt_id, Verdict(reason, detail)))
    return judged


def replace_verdicts(db: sqlite3.Connection, judged: Iterable[Judged]) -> None:
    """All verdicts of a run at once: readers see the old set or the new one, never a mix."""
    with db:
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM verdicts")
        for item in judged:
            save_verdict(db, item)


def rejects_summary(counts: Counter[str]) -> str:
    rejected = {k: v for k, v in counts.items() if k != "ok"}
    if not rejected:
        return "none"
    return ", ".join(
        f"{reason} {n:,}" for reason, n in sorted(rejected.items(), key=lambda kv: -kv[1])
    )


def require_kept(counts: Counter[str]) -> None:
    """An empty dataset is an error that says why."""
    if counts.get("ok", 0) == 0:
        total = sum(counts.values())
        if total == 0:
            raise KahaniError("no answers to clean: the run has no responses yet")
        raise KahaniError(f"all {total:,} answers were rejected: {rejects_summary(counts)}")
