"""The run store: one SQLite database per run, in WAL mode, every answer committed at once.

Why SQLite and not append-only JSONL: a resume must answer "which prompts are done, and
is there already an answer for this exact request?" for millions of prompts without
reading everything back, batches must be recorded the moment they are created, and
concurrent readers (`factory status` during a run) must see a consistent state. SQLite
gives indexed lookups, atomic commits that survive SIGKILL (WAL with synchronous=FULL),
and one file to copy. Schema: ARCHITECTURE.md.
"""

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from factory.errors import KahaniError

SCHEMA = """
CREATE TABLE IF NOT EXISTS prompts (
    id TEXT PRIMARY KEY,          -- the prompt id
    idx INTEGER NOT NULL,         -- position in the seeded prompt order
    variables TEXT NOT NULL,      -- JSON: the sampled words
    messages TEXT NOT NULL,       -- JSON: the chat messages sent
    request_key TEXT NOT NULL,    -- hash of provider, model, messages and parameters
    status TEXT NOT NULL DEFAULT 'pending',  -- pending | done | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS prompts_status ON prompts(status);
CREATE TABLE IF NOT EXISTS responses (
    prompt_id TEXT PRIMARY KEY REFERENCES prompts(id),
    request_key TEXT NOT NULL,
    text TEXT NOT NULL,
    finish_reason TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    batch INTEGER NOT NULL DEFAULT 0,  -- 1 when answered through the Batch API
    latency_s REAL,
    attempts INTEGER NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_key ON responses(request_key);
CREATE TABLE IF NOT EXISTS superseded (
    prompt_id TEXT NOT NULL,      -- a rejected answer replaced by --retry-rejected
    reason TEXT NOT NULL,         -- why it was rejected
    response TEXT NOT NULL,       -- JSON of its responses row, kept, never deleted
    superseded_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY,          -- the provider's batch id
    input_file_id TEXT NOT NULL,
    prompt_ids TEXT NOT NULL,     -- JSON list of the prompt ids in the batch
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    collected INTEGER NOT NULL DEFAULT 0  -- 1 once its output and error files are read
);
"""


@dataclass(frozen=True)
class Answer:
    """One response as the store keeps it."""

    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    model: str
    provider: str
    latency_s: float | None
    attempts: int
    started_at: float
    finished_at: float
    batch: bool = False


@dataclass(frozen=True)
class Counts:
    done: int
    failed: int
    pending: int
    prompt_tokens: int
    completion_tokens: int
    batch_prompt_tokens: int
    batch_completion_tokens: int


class RunStore:
    def __init__(self, path: Path) -> None:
        try:
            self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
        except sqlite3.OperationalError as err:
            raise KahaniError(f"cannot open run store {path}: {err}") from None
        self.db.execute("PRAGMA journal_mode=WAL")
        # FULL: an answer we were billed for must survive a power cut, not only SIGKILL.
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def add_prompts(self, rows: Iterable[tuple[str, int, dict, list[dict], str]]) -> None:
        """Register prompts (id, index, variables, messages, request key); known ids are kept."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT OR IGNORE INTO prompts(id, idx, variables, messages, request_key)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    (
                        pid,
                        idx,
                        json.dumps(v, ensure_ascii=False),
                        json.dumps(m, ensure_ascii=False),
                        key,
                    )
                    for pid, idx, v, m, key in rows
                ),
            )

    def known_ids(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT id FROM prompts")}

    def unfinished(self, ids: Iterable[str] | None = None) -> list[tuple[str, int, str, str]]:
        """(id, index, messages JSON, request key) of prompts without an answer, in index order."""
        rows = self.db.execute(
            "SELECT id, idx, messages, request_key FROM prompts WHERE status != 'done' ORDER BY idx"
        ).fetchall()
        if ids is None:
            return rows
        wanted = set(ids)
        return [row for row in rows if row[0] in wanted]

    def known_answers(self, ids: list[str]) -> set[str]:
        """Which of these prompts already have an answer."""
        wanted = set(ids)
        return {
            pid for (pid,) in self.db.execute("SELECT prompt_id FROM responses") if pid in wanted
        }

    def request_key_of(self, prompt_id: str) -> str | None:
        row = self.db.execute(
            "SELECT request_key FROM prompts WHERE id = ?", (prompt_id,)
        ).fetchone()
        return row[0] if row else None

    def variables_of(self, prompt_id: str) -> dict:
        row = self.db.execute("SELECT variables FROM prompts WHERE id = ?", (prompt_id,)).fetchone()
        return json.loads(row[0]) if row else {}

    def requeue(self, rejected: list[tuple[str, str]]) -> None:
        """Make (prompt id, reason) pending again; their answers move to `superseded`."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for prompt_id, reason in rejected:
                self.db.execute(
                    "INSERT INTO superseded SELECT prompt_id, ?, json_object("
                    "'text', text, 'finish_reason', finish_reason, 'model', model,"
                    " 'provider', provider, 'prompt_tokens', prompt_tokens,"
                    " 'completion_tokens', completion_tokens, 'batch', batch,"
                    " 'finished_at', finished_at), ? FROM responses WHERE prompt_id = ?",
                    (reason, time.time(), prompt_id),
                )
                self.db.execute("DELETE FROM responses WHERE prompt_id = ?", (prompt_id,))
                self.db.execute("UPDATE prompts SET status = 'pending' WHERE id = ?", (prompt_id,))

    def cached(self, request_key: str) -> Answer | None:
        """An answer already paid for with exactly this request, from any prompt of the run."""
        row = self.db.execute(
            "SELECT text, finish_reason, prompt_tokens, completion_tokens, model, provider,"
            " latency_s, attempts, started_at, finished_at, batch FROM responses"
            " WHERE request_key = ? LIMIT 1",
            (request_key,),
        ).fetchone()
        return Answer(*row[:10], batch=bool(row[10])) if row else None

    def save_answer(self, prompt_id: str, request_key: str, answer: Answer) -> None:
        """Commit one answer; it counts only once this returns."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    prompt_id,
                    request_key,
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
            self.db.execute(
                "UPDATE prompts SET status='done', attempts=?, last_error=NULL WHERE id=?",
                (answer.attempts, prompt_id),
            )

    def save_failure(self, prompt_id: str, attempts: int, error: str) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "UPDATE prompts SET status='failed', attempts=?, last_error=? WHERE id=?",
                (attempts, error[:1000], prompt_id),
            )

    def counts(self) -> Counts:
        status = dict(self.db.execute("SELECT status, COUNT(*) FROM prompts GROUP BY status"))
        tokens = dict(
            (bool(batch), (p or 0, c or 0))
            for batch, p, c in self.db.execute(
                "SELECT batch, SUM(prompt_tokens), SUM(completion_tokens) FROM responses"
                " GROUP BY batch"
            )
        )
        std, bat = tokens.get(False, (0, 0)), tokens.get(True, (0, 0))
        return Counts(
            done=status.get("done", 0),
            failed=status.get("failed", 0),
            pending=status.get("pending", 0),
            prompt_tokens=std[0],
            completion_tokens=std[1],
            batch_prompt_tokens=bat[0],
            batch_completion_tokens=bat[1],
        )

    def errors(self, limit: int = 5) -> list[tuple[str, int]]:
        """The most common last errors of failed prompts, with their counts."""
        return self.db.execute(
            "SELECT last_error, COUNT(*) AS n FROM prompts WHERE status='failed'"
            " GROUP BY last_error ORDER BY n DESC LIMIT ?",
            (limit,),
        ).fetchall()

    # Batches -----------------------------------------------------------------------

    def record_batch(
        self, batch_id: str, input_file_id: str, prompt_ids: list[str], status: str
    ) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT OR IGNORE INTO batches VALUES (?, ?, ?, ?, ?, 0)",
                (batch_id, input_file_id, json.dumps(prompt_ids), status, time.time()),
            )

    def open_batches(self) -> list[tuple[str, list[str]]]:
        """Batches whose results have not been collected yet: (batch id, prompt ids)."""
        return [
            (bid, json.loads(ids))
            for bid, ids in self.db.execute(
                "SELECT id, prompt_ids FROM batches WHERE collected = 0 ORDER BY created_at"
            )
        ]

    def batch_ids(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT id FROM batches")}

    def close_batch(self, batch_id: str, status: str) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "UPDATE batches SET status=?, collected=1 WHERE id=?", (status, batch_id)
            )
