"""The run store: one SQLite database per run, and the only code in kahani that speaks SQL.

Why SQLite and not append-only JSONL: a resume must answer "which prompts are done, and
is there already an answer for this exact request?" for millions of prompts without
reading everything back, batches must be recorded the moment they are created, and
concurrent readers (`factory status` during a run) must see a consistent state. SQLite
gives indexed lookups, atomic commits that survive SIGKILL and power loss (WAL with
synchronous=FULL), and one file to copy. Schema: ARCHITECTURE.md.

Every other module asks for what it needs through the named queries below. A store is
opened to write (`RunStore.open(path, create=True)` by generate, import and the judge's
request stores) or to read (`RunStore.open(path)`, by status, stats and reports, which
never write). A store that is empty, truncated or not SQLite is refused, never re-created:
re-creating it would forget which answers were paid for.
"""

import asyncio
import json
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from factory.errors import KahaniError

SCHEMA_VERSION = 3  # 1: prompts, responses, superseded, batches; 2: + verdicts, meta; 3: + grades
SQLITE_HEADER = b"SQLite format 3\x00"

SCHEMA = """
CREATE TABLE IF NOT EXISTS prompts (
    id TEXT PRIMARY KEY,          -- the prompt id
    idx INTEGER NOT NULL,         -- position in the seeded prompt order
    variables TEXT NOT NULL,      -- JSON: the sampled words
    messages TEXT NOT NULL,       -- JSON: the chat messages sent
    request_key TEXT NOT NULL,    -- hash of provider, model, messages and parameters
    status TEXT NOT NULL DEFAULT 'pending',  -- pending | done | failed | invalid
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
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,   -- 'tag': a random id made once, tags this store's batches;
    value TEXT NOT NULL     -- 'grading': JSON of the judge, rubric and --min-score of the grades
);
CREATE TABLE IF NOT EXISTS grades (
    prompt_id TEXT PRIMARY KEY,  -- a kept answer graded by `factory clean --judge`
    score REAL,             -- the rubric's filter score; NULL when the judge gave none usable
    scores TEXT NOT NULL,   -- JSON: every dimension's score
    reasoning TEXT NOT NULL,
    problem TEXT NOT NULL   -- why no score could be read ("" when one was)
);
"""

# Rejections that a new request cannot fix: nothing was answered, or the input was unreadable
# or could not be made into a prompt (`factory generate --from-dataset`).
INPUT_REASONS = ("corrupt_line", "empty_row", "render_failed")
NOT_RETRYABLE = ("request_failed", *INPUT_REASONS)
FETCH = 1000  # rows read at a time when streaming


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
class Usage:
    """Tokens billed, apart by price: standard requests and Batch API answers."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    batch_prompt_tokens: int = 0
    batch_completion_tokens: int = 0

    @property
    def total_in(self) -> int:
        return self.prompt_tokens + self.batch_prompt_tokens

    @property
    def total_out(self) -> int:
        return self.completion_tokens + self.batch_completion_tokens


@dataclass(frozen=True)
class Counts:
    done: int
    failed: int
    pending: int
    usage: Usage
    invalid: int = 0  # dataset rows that could not be made into a prompt (never sent)


@dataclass(frozen=True)
class PromptRecord:
    id: str
    index: int
    variables: dict
    messages: list[dict]
    request_key: str
    status: str  # pending | done | failed
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class AnswerRecord:
    prompt_id: str
    request_key: str
    answer: Answer


@dataclass(frozen=True)
class VerdictRow:
    """What cleaning decided about one answer (`reason` None: kept)."""

    prompt_id: str
    reason: str | None
    detail: str = ""
    text: str = ""
    messages: list[dict] | None = None
    duplicate_of: str | None = None
    similarity: float | None = None


@dataclass(frozen=True)
class KeptRow:
    prompt_id: str
    text: str
    messages: list[dict] | None
    variables: dict
    model: str


@dataclass(frozen=True)
class GradeRow:
    """A judge's grade of one kept answer (`score` None: no usable grade, see `problem`)."""

    prompt_id: str
    score: float | None
    scores: dict[str, float]
    reasoning: str = ""
    problem: str = ""


@dataclass(frozen=True)
class Reply:
    """An item's answer for the judge, or why there is none."""

    text: str | None  # None when the request failed or was never answered
    error: str
    finish_reason: str | None = None


@dataclass(frozen=True)
class TableRow:
    """One prompt with its verdict and answer, for the dataset report's table."""

    prompt_id: str
    variables: dict
    status: str
    reason: str | None
    detail: str | None
    text: str | None  # the clean text when cleaning kept or rejected it after parsing
    duplicate_of: str | None
    raw: str | None
    completion_tokens: int | None


_ANSWER_COLUMNS = (
    "text, finish_reason, prompt_tokens, completion_tokens, model, provider,"
    " latency_s, attempts, started_at, finished_at, batch"
)


def _answer(row: tuple) -> Answer:
    return Answer(*row[:10], batch=bool(row[10]))


def _check_file(path: Path) -> None:
    """Refuse what is not a run store before SQLite silently treats it as a new one."""
    try:
        with path.open("rb") as f:
            header = f.read(len(SQLITE_HEADER))
    except OSError as err:
        raise KahaniError(f"cannot read run store {path}: {err.strerror}") from None
    if not header:
        raise KahaniError(
            f"run store {path} is empty (0 bytes), so which answers were paid for is unknown; "
            "restore it from a copy, or move it away to start the run over"
        )
    if header != SQLITE_HEADER:
        raise KahaniError(
            f"run store {path} is not an SQLite database (truncated or overwritten); "
            "restore it from a copy"
        )


class RunStore:
    """A run's prompts, answers, verdicts and batches. Use `RunStore.open`."""

    def __init__(self, path: Path, db: sqlite3.Connection, writable: bool) -> None:
        self.path = path
        self.db = db
        self.writable = writable

    @classmethod
    def open(cls, path: Path, *, create: bool = False, write: bool = False) -> "RunStore":
        """Open a store to read (default), to write (`write`), or to write and make it if it
        does not exist yet (`create`). Damage is a one-line error, never a fresh store."""
        path = Path(path)
        exists = path.exists()
        if not exists and not create:
            raise KahaniError(f"{path} does not exist: not a run folder with a store")
        if exists:
            _check_file(path)
        writable = create or write
        try:
            if writable:
                db = sqlite3.connect(path, isolation_level=None, timeout=30)
            else:
                db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        except sqlite3.Error as err:
            raise KahaniError(f"cannot open run store {path}: {err}") from None
        store = cls(path, db, writable)
        try:
            if exists:
                store._check_integrity()
            if writable:
                db.execute("PRAGMA journal_mode=WAL")
                # FULL: an answer we were billed for must survive a power cut, not only SIGKILL.
                db.execute("PRAGMA synchronous=FULL")
                store._migrate()
        except KahaniError:
            db.close()
            raise
        except sqlite3.Error as err:
            db.close()
            raise _store_error(path, err) from None
        return store

    def _check_integrity(self) -> None:
        try:
            result = self.db.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as err:
            raise KahaniError(
                f"run store {self.path} is damaged ({err}); restore it from a copy"
            ) from None
        if result != "ok":
            raise KahaniError(
                f"run store {self.path} is damaged ({result}); restore it from a copy"
            )

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version >= SCHEMA_VERSION:
            return
        # CREATE ... IF NOT EXISTS: a store made by an older kahani gains the new tables.
        self.db.executescript(SCHEMA)
        self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One atomic write; a full disk or a lost file is a one-line error, and SQLite's
        rollback keeps everything committed before."""
        if not self.writable:
            raise RuntimeError(f"{self.path} was opened read-only")  # a bug, not user input
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if self.db.in_transaction:  # SQLite may have rolled back already (disk full)
                    self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.Error as err:
            raise _store_error(self.path, err) from None

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.Error as err:
            raise _store_error(self.path, err) from None

    def _stream(self, sql: str, args: tuple = (), batch: int = FETCH) -> Iterator[tuple]:
        """Rows `batch` at a time, for reads too large to hold as one list."""
        try:
            cursor = self.db.execute(sql, args)
            while rows := cursor.fetchmany(batch):
                yield from rows
        except sqlite3.Error as err:
            raise _store_error(self.path, err) from None

    def _has_verdicts(self) -> bool:
        # A store from before cleaning existed, opened read-only, has no verdicts table.
        return self._has_table("verdicts")

    def _has_table(self, name: str) -> bool:
        return bool(self._read("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)))

    # Prompts and answers ----------------------------------------------------------------

    def add_prompts(self, rows: Iterable[tuple[str, int, dict, list[dict], str]]) -> None:
        """Register prompts (id, index, variables, messages, request key); known ids are kept."""
        with self._transaction():
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
        return {row[0] for row in self._read("SELECT id FROM prompts")}

    def unfinished(self, ids: Iterable[str]) -> list[PromptRecord]:
        """The given prompts that have no answer yet, in index order."""
        wanted = set(ids)
        return [p for p in self._prompts("WHERE status != 'done' ORDER BY idx") if p.id in wanted]

    def prompts(self) -> list[PromptRecord]:
        """Every prompt of the run, in index order."""
        return self._prompts("ORDER BY idx")

    def _prompts(self, where: str) -> list[PromptRecord]:
        rows = self._read(
            "SELECT id, idx, variables, messages, request_key, status, attempts, last_error"
            f" FROM prompts {where}"
        )
        return [
            PromptRecord(pid, idx, json.loads(v), json.loads(m), key, status, attempts, error)
            for pid, idx, v, m, key, status, attempts, error in rows
        ]

    def answered(self, ids: Iterable[str]) -> set[str]:
        """Which of these prompts already have an answer."""
        wanted = set(ids)
        return {pid for (pid,) in self._read("SELECT prompt_id FROM responses") if pid in wanted}

    def request_key_of(self, prompt_id: str) -> str | None:
        rows = self._read("SELECT request_key FROM prompts WHERE id = ?", (prompt_id,))
        return rows[0][0] if rows else None

    def variables_of(self, prompt_id: str) -> dict:
        rows = self._read("SELECT variables FROM prompts WHERE id = ?", (prompt_id,))
        return json.loads(rows[0][0]) if rows else {}

    def cached(self, request_key: str) -> Answer | None:
        """An answer already paid for with exactly this request, from any prompt of the store."""
        rows = self._read(
            f"SELECT {_ANSWER_COLUMNS} FROM responses WHERE request_key = ? LIMIT 1",
            (request_key,),
        )
        return _answer(rows[0]) if rows else None

    def save_answer(self, prompt_id: str, request_key: str, answer: Answer) -> None:
        """Commit one answer; it counts only once this returns."""
        self.save_answers([(prompt_id, request_key, answer)])

    def save_answers(self, answers: Iterable[tuple[str, str, Answer]]) -> None:
        """Commit (prompt id, request key, answer) triples in one transaction."""
        with self._transaction():
            _insert_answers(self.db, answers)

    def answer_writer(self) -> "AnswerWriter":
        """A writer that commits answers arriving on an event loop in groups, off the loop."""
        return AnswerWriter(self.path)

    def save_failure(self, prompt_id: str, attempts: int, error: str) -> None:
        with self._transaction():
            self.db.execute(
                "UPDATE prompts SET status='failed', attempts=?, last_error=? WHERE id=?",
                (attempts, error[:1000], prompt_id),
            )

    def answers(self) -> list[AnswerRecord]:
        """Every stored answer, in the order the answers arrived."""
        rows = self._read(
            f"SELECT prompt_id, request_key, {_ANSWER_COLUMNS} FROM responses ORDER BY finished_at"
        )
        return [AnswerRecord(r[0], r[1], _answer(r[2:])) for r in rows]

    def answers_in_order(self) -> list[tuple[str, dict, str, str | None]]:
        """(prompt id, variables, answer text, finish reason) of each answer, in prompt order."""
        rows = self._read(
            "SELECT p.id, p.variables, r.text, r.finish_reason FROM responses r"
            " JOIN prompts p ON p.id = r.prompt_id ORDER BY p.idx"
        )
        return [(pid, json.loads(v), text, finish) for pid, v, text, finish in rows]

    def answer_count(self) -> int:
        """How many prompts have an answer."""
        return self._read("SELECT COUNT(*) FROM responses")[0][0]

    def answer_indices(self) -> Iterator[int]:
        """The prompt index of every answer, ascending, read as the caller goes (a run of
        millions never becomes one list): where to cut the answers into equal shares."""
        for (idx,) in self._stream(
            "SELECT p.idx FROM responses r JOIN prompts p ON p.id = r.prompt_id ORDER BY p.idx"
        ):
            yield idx

    def answers_between(self, lo: int, hi: int) -> Iterator[tuple[str, int, dict, str, str | None]]:
        """(prompt id, index, variables, answer text, finish reason) of the answers with
        lo <= index < hi, in prompt order, read as the caller goes: one share of a run."""
        for pid, idx, variables, text, finish in self._stream(
            "SELECT p.id, p.idx, p.variables, r.text, r.finish_reason FROM responses r"
            " JOIN prompts p ON p.id = r.prompt_id WHERE p.idx >= ? AND p.idx < ? ORDER BY p.idx",
            (lo, hi),
        ):
            yield pid, idx, json.loads(variables), text, finish

    def replies(self, ids: list[str]) -> dict[str, Reply]:
        """Each item's answer text, or the error that kept it from having one."""
        rows = self._read(
            "SELECT p.id, r.text, r.finish_reason, p.last_error FROM prompts p"
            " LEFT JOIN responses r ON r.prompt_id = p.id"
        )
        by_id = {pid: Reply(text, error or "", finish) for pid, text, finish, error in rows}
        return {item_id: by_id.get(item_id, Reply(None, "not sent")) for item_id in ids}

    def counts(self) -> Counts:
        status = dict(self._read("SELECT status, COUNT(*) FROM prompts GROUP BY status"))
        return Counts(
            done=status.get("done", 0),
            failed=status.get("failed", 0),
            pending=status.get("pending", 0),
            usage=self.usage(),
            invalid=status.get("invalid", 0),
        )

    def usage(self) -> Usage:
        """Tokens of every stored answer, standard and Batch API apart (they cost differently)."""
        by_batch = {
            bool(batch): (p or 0, c or 0)
            for batch, p, c in self._read(
                "SELECT batch, SUM(prompt_tokens), SUM(completion_tokens) FROM responses"
                " GROUP BY batch"
            )
        }
        std, bat = by_batch.get(False, (0, 0)), by_batch.get(True, (0, 0))
        return Usage(std[0], std[1], bat[0], bat[1])

    def models(self) -> list[str]:
        return [m for (m,) in self._read("SELECT DISTINCT model FROM responses ORDER BY model")]

    def errors(self, limit: int = 5) -> list[tuple[str, int]]:
        """The most common last errors of failed prompts, with their counts."""
        return self._read(
            "SELECT last_error, COUNT(*) AS n FROM prompts WHERE status='failed'"
            " GROUP BY last_error ORDER BY n DESC LIMIT ?",
            (limit,),
        )

    def failed_prompts(self) -> list[tuple[str, str]]:
        """(prompt id, last error) of prompts that failed every attempt, in prompt order."""
        return [
            (pid, error or "")
            for pid, error in self._read(
                "SELECT id, last_error FROM prompts WHERE status = 'failed' ORDER BY idx"
            )
        ]

    def add_invalid(self, rows: Iterable[tuple[str, int, dict, str]]) -> None:
        """Record (prompt id, index, variables, "reason: detail") of dataset rows that could
        not be made into a prompt: status `invalid`, never sent; an id already known is kept."""
        with self._transaction():
            self.db.executemany(
                "INSERT OR IGNORE INTO prompts(id, idx, variables, messages, request_key, status,"
                " last_error) VALUES (?, ?, ?, '[]', '', 'invalid', ?)",
                (
                    (pid, idx, json.dumps(v, ensure_ascii=False), error[:1000])
                    for pid, idx, v, error in rows
                ),
            )

    def invalid_prompts(self) -> list[tuple[str, str]]:
        """(prompt id, "reason: detail") of rows that could not be made into a prompt."""
        return [
            (pid, error or "")
            for pid, error in self._read(
                "SELECT id, last_error FROM prompts WHERE status = 'invalid' ORDER BY idx"
            )
        ]

    def requeue(self, rejected: list[tuple[str, str]]) -> None:
        """Make (prompt id, reason) pending again; their answers move to `superseded`."""
        with self._transaction():
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

    def superseded(self) -> list[tuple[str, str, dict]]:
        """(prompt id, reason, the replaced answer) of answers set aside by --retry-rejected."""
        return [
            (pid, reason, json.loads(response))
            for pid, reason, response in self._read(
                "SELECT prompt_id, reason, response FROM superseded ORDER BY superseded_at"
            )
        ]

    def tag(self) -> str:
        """A random id made once per store: tags its batches at the provider."""
        rows = self._read("SELECT value FROM meta WHERE key = 'tag'") if self._has_meta() else []
        if rows:
            return rows[0][0]
        tag = uuid.uuid4().hex[:16]
        with self._transaction():
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('tag', ?)", (tag,))
        return self._read("SELECT value FROM meta WHERE key = 'tag'")[0][0]

    def _has_meta(self) -> bool:
        return self._has_table("meta")

    # Batches ----------------------------------------------------------------------------

    def record_batch(
        self, batch_id: str, input_file_id: str, prompt_ids: list[str], status: str
    ) -> None:
        with self._transaction():
            self.db.execute(
                "INSERT OR IGNORE INTO batches VALUES (?, ?, ?, ?, ?, 0)",
                (batch_id, input_file_id, json.dumps(prompt_ids), status, time.time()),
            )

    def open_batches(self) -> list[tuple[str, list[str]]]:
        """Batches whose results have not been collected yet: (batch id, prompt ids)."""
        return [
            (bid, json.loads(ids))
            for bid, ids in self._read(
                "SELECT id, prompt_ids FROM batches WHERE collected = 0 ORDER BY created_at"
            )
        ]

    def batches(self) -> list[tuple[str, str]]:
        """(batch id, status) of every batch, oldest first."""
        return self._read("SELECT id, status FROM batches ORDER BY created_at")

    def close_batch(self, batch_id: str, status: str) -> None:
        with self._transaction():
            self.db.execute(
                "UPDATE batches SET status=?, collected=1 WHERE id=?", (status, batch_id)
            )

    # Verdicts ---------------------------------------------------------------------------

    def save_verdicts(self, rows: Iterable[VerdictRow]) -> None:
        """Verdicts of answers as they arrive during a run, a few at a time."""
        with self._transaction():
            for row in rows:
                self._insert_verdict(row)

    def replace_verdicts(self, rows: Iterable[VerdictRow]) -> None:
        """All verdicts of the run at once: cleaning recomputes them from the raw answers.
        One transaction, so readers see the old set or the new one, never a mix; `rows` may
        be a generator, written as it goes (the distributed clean streams millions)."""
        with self._transaction():
            self.db.execute("DELETE FROM verdicts")
            for row in rows:
                self._insert_verdict(row)

    def _insert_verdict(self, v: VerdictRow) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                v.prompt_id,
                v.reason,
                v.detail,
                v.text,
                json.dumps(v.messages, ensure_ascii=False) if v.messages else None,
                v.duplicate_of,
                v.similarity,
            ),
        )

    def verdicts(self) -> dict[str, str | None]:
        """Prompt id -> reject reason (None when kept)."""
        if not self._has_verdicts():
            return {}
        return dict(self._read("SELECT prompt_id, reason FROM verdicts"))

    def reject_counts(self) -> Counter[str]:
        if not self._has_verdicts():
            return Counter()
        return Counter(dict(self._read("SELECT reason, COUNT(*) FROM rejects GROUP BY reason")))

    def retryable_rejects(self, ids: Iterable[str]) -> list[tuple[str, str]]:
        """(prompt id, reason) of the given prompts whose answer was rejected by a check that
        a new answer may pass."""
        wanted = set(ids)
        return [
            (pid, reason)
            for pid, reason in self._read("SELECT prompt_id, reason FROM rejects")
            if pid in wanted and reason not in NOT_RETRYABLE
        ]

    def kept(self) -> list[KeptRow]:
        """The rows cleaning kept, in prompt order, with the words asked for and the model."""
        if not self._has_verdicts():
            return []
        rows = self._read(
            "SELECT v.prompt_id, v.text, v.messages, p.variables, r.model FROM verdicts v"
            " JOIN prompts p ON p.id = v.prompt_id JOIN responses r ON r.prompt_id = v.prompt_id"
            " WHERE v.reason IS NULL ORDER BY p.idx"
        )
        return [
            KeptRow(pid, text, json.loads(m) if m else None, json.loads(v), model)
            for pid, text, m, v, model in rows
        ]

    def iter_kept(self, batch: int = FETCH) -> Iterator[KeptRow]:
        """The kept rows in prompt order, like `kept()`, read `batch` rows at a time: a million
        rows stream through in bounded memory."""
        if not self._has_verdicts():
            return
        for pid, text, m, v, model in self._stream(
            "SELECT v.prompt_id, v.text, v.messages, p.variables, r.model FROM verdicts v"
            " JOIN prompts p ON p.id = v.prompt_id"
            " JOIN responses r ON r.prompt_id = v.prompt_id"
            " WHERE v.reason IS NULL ORDER BY p.idx",
            batch=batch,
        ):
            yield KeptRow(pid, text, json.loads(m) if m else None, json.loads(v), model)

    def messages_of(self, ids: Iterable[str]) -> dict[str, list[dict]]:
        """The chat messages that were sent for these prompts."""
        wanted = set(ids)
        return {
            pid: json.loads(m)
            for pid, m in self._read("SELECT id, messages FROM prompts")
            if pid in wanted
        }

    # Grades -----------------------------------------------------------------------------

    def replace_grades(self, rows: Iterable[GradeRow], grading: dict | None) -> None:
        """All grades of the run at once (none when this clean had no judge), with what
        made them (`grading`: judge, rubric, min_score), recorded in `meta`."""
        with self._transaction():
            self.db.execute("DELETE FROM grades")
            self.db.execute("DELETE FROM meta WHERE key = 'grading'")
            self.db.executemany(
                "INSERT OR REPLACE INTO grades VALUES (?, ?, ?, ?, ?)",
                (
                    (g.prompt_id, g.score, json.dumps(g.scores), g.reasoning, g.problem)
                    for g in rows
                ),
            )
            if grading is not None:
                self.db.execute("INSERT INTO meta VALUES ('grading', ?)", (json.dumps(grading),))

    def grading(self) -> dict | None:
        """The judge, rubric and min_score of the stored grades (None: not graded)."""
        if not self._has_table("grades"):
            return None
        rows = self._read("SELECT value FROM meta WHERE key = 'grading'")
        return json.loads(rows[0][0]) if rows else None

    def grades(self) -> list[tuple[GradeRow, str | None, str]]:
        """Every grade with the answer's verdict reason (None: kept) and its clean text."""
        if not self._has_table("grades"):
            return []
        rows = self._read(
            "SELECT g.prompt_id, g.score, g.scores, g.reasoning, g.problem, v.reason, v.text"
            " FROM grades g LEFT JOIN verdicts v ON v.prompt_id = g.prompt_id"
            " ORDER BY g.prompt_id"
        )
        return [
            (GradeRow(pid, score, json.loads(scores), reasoning, problem), reason, text or "")
            for pid, score, scores, reasoning, problem, reason, text in rows
        ]

    def reject_examples(self, reason: str, limit: int) -> list[tuple[str, str, str]]:
        """(prompt id, detail, text) of a few answers rejected for `reason`: the clean text
        where cleaning got that far, else the raw answer."""
        rows = self._read(
            "SELECT v.prompt_id, v.detail, v.text, r.text FROM verdicts v"
            " LEFT JOIN responses r ON r.prompt_id = v.prompt_id"
            " WHERE v.reason = ? ORDER BY v.prompt_id LIMIT ?",
            (reason, limit),
        )
        return [(pid, detail, text or raw or "") for pid, detail, text, raw in rows]

    def duplicate_clusters(
        self, limit: int, copies: int = 5
    ) -> list[tuple[str, int, str, list[tuple[str, float, str]]]]:
        """The kept texts with the most duplicates: (kept id, copies, its text, the closest
        copies as (id, similarity, text))."""
        if not self._has_verdicts():
            return []
        heads = self._read(
            "SELECT duplicate_of, COUNT(*) FROM verdicts WHERE duplicate_of IS NOT NULL"
            " GROUP BY duplicate_of ORDER BY COUNT(*) DESC, duplicate_of LIMIT ?",
            (limit,),
        )
        clusters = []
        for head, size in heads:
            kept = self._read("SELECT text FROM verdicts WHERE prompt_id = ?", (head,))
            closest = self._read(
                "SELECT prompt_id, similarity, text FROM verdicts WHERE duplicate_of = ?"
                " ORDER BY similarity DESC LIMIT ?",
                (head, copies),
            )
            clusters.append((head, size, kept[0][0] if kept else "", closest))
        return clusters

    def table(self) -> list[TableRow]:
        """Every prompt with its verdict and answer, in prompt order (the report's table)."""
        verdicts = (
            "LEFT JOIN verdicts v ON v.prompt_id = p.id"
            if self._has_verdicts()
            else "LEFT JOIN (SELECT NULL AS prompt_id, NULL AS reason, NULL AS detail,"
            " NULL AS text, NULL AS duplicate_of) v ON 0"
        )
        rows = self._read(
            "SELECT p.id, p.variables, p.status, v.reason, v.detail, v.text, v.duplicate_of,"
            f" r.text, r.completion_tokens FROM prompts p {verdicts}"
            " LEFT JOIN responses r ON r.prompt_id = p.id ORDER BY p.idx"
        )
        return [TableRow(r[0], json.loads(r[1]), *r[2:]) for r in rows]


def _insert_answers(db: sqlite3.Connection, answers: Iterable[tuple[str, str, Answer]]) -> None:
    for prompt_id, request_key, answer in answers:
        db.execute(
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
        db.execute(
            "UPDATE prompts SET status='done', attempts=?, last_error=NULL WHERE id=?",
            (answer.attempts, prompt_id),
        )


class AnswerWriter:
    """Commits answers from an event loop, off the loop and in groups.

    A commit with synchronous=FULL waits for the disk (about 6 ms here): one per answer, on
    the event loop, would stall every request in flight and cap a run near 170 answers/s.
    So `save` hands the answer to a thread of its own with its own connection, and every
    answer that arrived while the last commit was on the disk goes into the next transaction
    together. `save` returns once its answer's transaction is committed: an answer counts only
    then, as before, and a kill loses at most the answers of the group being written.
    """

    def __init__(self, path: Path) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.path = path
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="kahani-store")
        self._db: sqlite3.Connection | None = None  # made and used in that thread only
        self._waiting: list[tuple[tuple[str, str, Answer], asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def save(self, prompt_id: str, request_key: str, answer: Answer) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._waiting.append(((prompt_id, request_key, answer), done))
        if self._flushing is None or self._flushing.done():
            self._flushing = loop.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                await loop.run_in_executor(self._executor, self._commit, [row for row, _ in group])
            except BaseException as err:  # each waiting save learns it, e.g. a full disk
                for _, done in group:
                    if not done.done():
                        done.set_exception(err)
                continue
            for _, done in group:
                if not done.done():
                    done.set_result(None)

    def _commit(self, rows: list[tuple[str, str, Answer]]) -> None:
        try:
            if self._db is None:
                self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
                self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                _insert_answers(self._db, rows)
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as err:
            raise _store_error(self.path, err) from None

    async def close(self) -> None:
        """Wait for the last group, then let the thread go."""
        if self._flushing is not None:
            await asyncio.shield(self._flushing)
        if self._db is not None:
            self._executor.submit(self._db.close).result()
        self._executor.shutdown(wait=True)


def _store_error(path: Path, err: sqlite3.Error) -> KahaniError:
    """SQLite's failures that a user can act on, as one line."""
    message = str(err)
    if "full" in message:
        return KahaniError(
            f"the disk holding {path} is full; nothing committed before is lost: free some "
            "space and run the same command again"
        )
    if isinstance(err, sqlite3.DatabaseError) and (
        "malformed" in message or "not a database" in message
    ):
        return KahaniError(f"run store {path} is damaged ({message}); restore it from a copy")
    if "readonly" in message or "read-only" in message:
        return KahaniError(f"run store {path} cannot be written ({message})")
    return KahaniError(f"run store {path}: {message}")
