"""A local stand-in for the OpenAI API, spoken over real HTTP on 127.0.0.1.

Paid external APIs are the one thing kahani's tests and benchmarks may replace. This server
speaks the OpenAI protocol closely enough for the official `openai` client and for plain
HTTP clients: chat completions with OpenAI's rate-limit headers and error bodies, the Files
API and the Batch API. It injects faults on demand and counts everything it served, so a
test can check what a client did, not only what the client says it did.

    config = ServerConfig(api_key="sk-test", rpm=600, latency=0.05)
    with FakeOpenAI(config) as server:  # started in a background thread
        client = AsyncOpenAI(base_url=server.base_url, api_key="sk-test")
        ...
        assert server.stats.completions == 10

Standalone, for the benchmark and README walkthroughs (prints the base URL, then serves
until Ctrl-C and prints the stats):

    python tests/openai_server.py --port 0 --rpm 1200 --latency 0.3

Rate limits are token buckets, the way OpenAI reports them: the request bucket holds
`rpm * burst_s / 60` requests and refills continuously at `rpm / 60` per second (tokens
likewise with `tpm`), so in any t seconds at most `capacity + rpm * t / 60` requests are
admitted. The default `burst_s = 60` allows a full minute's worth at once, as OpenAI does;
`burst_s = 1` enforces the limit per second ("quantized", as OpenAI may also do). A request
the bucket cannot pay for gets HTTP 429 and costs nothing. `x-ratelimit-reset-*` is the time
until the bucket is full again; `retry-after` (whole seconds, rounded up) and
`retry-after-ms` are the time until this request would be admitted.

Only the standard library is used, so the project gains no dependency: one asyncio event
loop in a daemon thread serves every connection (HTTP/1.1 keep-alive, Content-Length or
chunked request bodies), so latency and hung requests never block other requests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import functools
import hashlib
import json
import logging
import math
import random
import re
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass, field, fields
from http import HTTPStatus
from itertools import pairwise
from typing import Any, Literal, Self, get_args
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

Json = dict[str, Any]

Fault = Literal[
    "400",  # context_length_exceeded: a client error, not worth retrying
    "429",  # a rate-limit answer (type "requests") with retry-after = retry_after_s
    "quota",  # 429 insufficient_quota: retrying does not help
    "500",  # server error
    "503",  # overloaded
    "timeout",  # hang for hang_seconds, then close the connection without an answer
    "drop",  # close the connection without an answer
    "malformed",  # 200 whose body is not valid JSON (correct Content-Length)
    "truncated",  # 200 whose connection closes mid-body (Content-Length claims more)
    "length",  # a valid completion cut to half its words, finish_reason "length"
]
FAULTS: tuple[Fault, ...] = get_args(Fault)

BatchStatus = Literal["completed", "expired", "failed", "cancelled"]


@dataclass(frozen=True)
class BatchOutcome:
    """How a batch ends. `answered` requests (in file order) are processed before a batch
    that does not complete stops; a "failed" batch fails validation and answers none."""

    status: BatchStatus = "completed"
    answered: int = 0


JudgeFormat = Literal["asked", "spaced_strings", "fenced", "prose", "lines", "garbage"]
JUDGE_FORMATS: tuple[JudgeFormat, ...] = get_args(JudgeFormat)
PairwisePreference = Literal["longer", "first", "known_words", "known_bigrams"]


def default_responder(
    body: Json,
    judge_format: JudgeFormat = "asked",
    pairwise_preference: PairwisePreference = "longer",
    known_words: Collection[str] = frozenset(),
) -> str:
    """A deterministic answer to the last user message of a chat request.

    A story prompt (asks for `{"story": ...}` and names `the verb "X", the noun "Y" and the
    adjective "Z"`) gets `{"story": ...}`: three short paragraphs in the prompt's language
    (English, Hindi, Marathi or Bangla) using the three words. A conversation prompt (asks
    for `{"conversation": ...}` with `exactly N turns`) gets N Hinglish turns alternating A
    and B. A grading rubric (asks for "an integer score" for `- name:` dimensions) gets a grade
    per dimension, lower for shorter texts, as a lenient judge would give, written the way
    `judge_format` says. A pairwise rubric (asks for a `"winner"`) gets a verdict for the text
    `pairwise_preference` picks. Anything else is echoed. The same prompt always gets the
    same answer, and with a `seed` in the request, the same prompt and seed (so repeated
    judgements with different seeds can differ, as a sampled judge's do). Grades also depend
    on the model asked, as two judges' grades do.
    """
    prompt = _last_user_text(body.get("messages") or [])
    seeded = prompt if body.get("seed") is None else f"{prompt}\0seed={body['seed']}"
    rng = random.Random(hashlib.sha256(seeded.encode()).digest())
    if '"winner"' in prompt:
        return _verdict(prompt, judge_format, pairwise_preference, known_words)
    if "an integer score" in prompt:
        judge = f"{seeded}\0model={body.get('model')}"
        return _grade(prompt, random.Random(hashlib.sha256(judge.encode()).digest()), judge_format)
    if '"story"' in prompt:
        return _story(prompt, rng)
    if '"conversation"' in prompt:
        return _conversation(prompt, rng)
    return prompt


def _grade(prompt: str, rng: random.Random, judge_format: JudgeFormat = "asked") -> str:
    """Scores from 1 to 10 for each `- name:` line of a rubric, from the graded text's length,
    written in one of the ways judges write them:

    asked           the JSON the rubric asks for: {"context_awareness": 7, ..., "reasoning": ...}
    spaced_strings  the published TinyStories-Regional format: {"context awareness": "7", ...,
                    "reason": ...}
    fenced          a sentence, then a ```json fence with "Title Case" keys and "7/10" scores
    prose           prose around {"scores": {...}, "explanation": ...}, one score per dimension
                    as {"score": 7, "reason": ...}
    lines           no JSON: "- **Context Awareness**: 7/10" lines and a "Reason:" line
    garbage         no scores at all, every time
    """
    dimensions = re.findall(r"^- (\w+):", prompt, flags=re.MULTILINE)
    quoted = prompt.split('"""')
    graded = quoted[3] if len(quoted) > 3 else prompt  # the second quoted block: the answer
    base = min(9, 2 + len(graded.split()) // 15)
    scores = {name: max(1, min(10, base + rng.choice((-1, 0, 0, 1)))) for name in dimensions}
    reason = f"{len(graded.split())} words, judged on length"
    spaced = {name.replace("_", " "): score for name, score in scores.items()}
    titled = {name.title(): score for name, score in spaced.items()}
    match judge_format:
        case "asked":
            return json.dumps(scores | {"reasoning": reason})
        case "spaced_strings":
            strings = {name: str(score) for name, score in spaced.items()}
            return json.dumps(strings | {"reason": reason})
        case "fenced":
            body = {name: f"{score}/10" for name, score in titled.items()} | {"Reason": reason}
            fence = f"```json\n{json.dumps(body, indent=2)}\n```"
            return f"Here is my evaluation of the story.\n{fence}"
        case "prose":
            nested = {name: {"score": score, "reason": "as the length suggests"}
                      for name, score in spaced.items()}  # fmt: skip
            body = {"scores": nested, "explanation": reason}
            return f"I read both parts carefully. My grades:\n{json.dumps(body)}\nHope this helps!"
        case "lines":
            lines = [f"- **{name}**: {score}/10" for name, score in titled.items()]
            return "\n".join(["Grades:", *lines, f"Reason: {reason}"])
        case "garbage":
            return "I am sorry, I cannot grade this text."
    raise ValueError(f"unknown judge_format {judge_format!r}; known: {JUDGE_FORMATS}")


def _verdict(
    prompt: str,
    judge_format: JudgeFormat,
    preference: PairwisePreference = "longer",
    known_words: Collection[str] = frozenset(),
) -> str:
    """A pairwise verdict on the two texts of a pairwise rubric (its third and fourth quoted
    blocks), in `judge_format`'s style: "longer" prefers the text with more words, "first"
    always names position A whatever the texts, "known_words" prefers the text with more of
    its words in `known_words` (a language's real words: a model that learned more writes
    more of them), "known_bigrams" the text with more of its adjacent word pairs in
    `known_words` (entries "w1 w2", see `vocabulary`: fluency beyond single words), then
    more known words; equal texts are a tie."""
    quoted = prompt.split('"""')
    a, b = (quoted[3], quoted[5]) if len(quoted) > 5 else ("", "")
    if preference == "first":
        winner = "A"
    else:
        if preference == "known_words":
            score_a, score_b = _known_share(a, known_words), _known_share(b, known_words)
        elif preference == "known_bigrams":
            score_a, score_b = (
                (_known_share(text, known_words, pairs=True), _known_share(text, known_words))
                for text in (a, b)
            )
        else:
            score_a, score_b = len(a.split()), len(b.split())
        winner = "A" if score_a > score_b else "B" if score_b > score_a else "tie"
    reason = f"{len(a.split())} against {len(b.split())} words"
    match judge_format:
        case "asked":
            return json.dumps({"winner": winner, "reason": reason})
        case "spaced_strings":
            return json.dumps({"Winner": f"Continuation {winner}" if winner != "tie" else "Tie",
                               "Reason": reason})  # fmt: skip
        case "fenced":
            verdict = json.dumps({"verdict": winner, "explanation": reason})
            return f"My verdict:\n```json\n{verdict}\n```"
        case "prose" | "lines":
            mark = {"A": "[[A]]", "B": "[[B]]", "tie": "[[C]]"}[winner]
            return f"Comparing the two, {reason}. Final verdict: {mark}"
        case "garbage":
            return "Both texts have their merits and I would rather not choose."
    raise ValueError(f"unknown judge_format {judge_format!r}; known: {JUDGE_FORMATS}")


def _words(text: str) -> list[str]:
    return [w for w in (w.strip("।.,!?\"'") for w in text.split()) if w]


def _known_share(text: str, known_words: Collection[str], pairs: bool = False) -> float:
    """The share of a text's words (or adjacent word pairs) found in `known_words`."""
    words = _words(text)
    units = [f"{x} {y}" for x, y in pairwise(words)] if pairs else words
    return sum(u in known_words for u in units) / len(units) if units else 0.0


def vocabulary(texts: Collection[str]) -> frozenset[str]:
    """The words of real texts and their adjacent pairs ("w1 w2"): `known_words` for the
    "known_words" and "known_bigrams" pairwise preferences."""
    known: set[str] = set()
    for text in texts:
        words = _words(text)
        known.update(words)
        known.update(f"{x} {y}" for x, y in pairwise(words))
    return frozenset(known)


@dataclass
class ServerConfig:
    """Behaviour of a FakeOpenAI. Fields may be changed while the server runs, except
    `seed`, which seeds the fault RNG once, when the server is made."""

    api_key: str | None = None  # required as `Authorization: Bearer <key>` when set
    latency: float = 0.0  # seconds added to every admitted chat completion
    # Spread of that latency: each answer's is multiplied by a log-normal draw with this sigma
    # (0.3: half of the answers within about 0.8x to 1.2x), as answer lengths vary.
    latency_jitter: float = 0.0
    # How many completions the server works on at full speed. Beyond it, an admitted request
    # takes `latency * in flight / capacity`: a self-hosted server (vLLM, Ollama, llama.cpp)
    # overloaded does not answer 429, it gets slower, and its throughput stays capacity /
    # latency. None: unlimited.
    capacity: int | None = None
    rpm: int | None = None  # requests per minute; None = unlimited
    tpm: int | None = None  # tokens per minute (prompt words + max_tokens); None = unlimited
    burst_s: float = 60.0  # bucket capacity, in seconds of refill (see the module doc)
    responder: Callable[[Json], str] = default_responder  # request body -> answer text
    # How the default responder writes a judge's answer (see _grade), and which text its
    # pairwise verdicts prefer (see _verdict).
    judge_format: JudgeFormat = "asked"
    pairwise_preference: PairwisePreference = "longer"
    known_words: Collection[str] = frozenset()  # for pairwise_preference "known_words"
    # Faults for chat completions. The n-th admitted request (0-based, counting requests
    # that passed authentication and the rate limiter) gets, in this order of precedence:
    # fault(n, body) when it returns a kind; "500" when n < fail_first_n; else a kind drawn
    # with fault_rates (kind -> probability) from an RNG seeded with `seed`, one draw per
    # request, so the faults of request n do not depend on timing.
    fault: Callable[[int, Json], Fault | None] | None = None
    fail_first_n: int = 0
    fault_rates: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0
    hang_seconds: float = 30.0  # how long a "timeout" fault hangs
    retry_after_s: float = 1.0  # retry-after of scripted "429" faults
    # Batches. A batch spends about batch_seconds from validating to its end.
    batch_seconds: float = 1.0
    batch_fail_ids: Collection[str] = frozenset()  # custom_ids answered with a 500 in a batch
    batch_outcome: Callable[[int], BatchOutcome] | None = None  # n-th batch (0-based) -> end
    # n-th batches.create call (0-based) -> HTTP status to refuse it with, or None to accept.
    batch_create_error: Callable[[int], int | None] | None = None
    # Fine-tuning jobs: how long they take, how they end (see the fine-tuning section).
    fine_tuning: FineTuningConfig = field(default_factory=lambda: FineTuningConfig())

    def __post_init__(self) -> None:
        unknown = set(self.fault_rates) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULTS}")
        if sum(self.fault_rates.values()) > 1:
            raise ValueError("fault_rates add up to more than 1")
        if self.judge_format not in JUDGE_FORMATS:
            raise ValueError(f"unknown judge_format {self.judge_format!r}; known: {JUDGE_FORMATS}")

    def respond(self, body: Json) -> str:
        """The answer text: the responder's; the default one writes as the fields say."""
        if self.responder is default_responder:
            return default_responder(
                body, self.judge_format, self.pairwise_preference, self.known_words
            )
        return self.responder(body)


@dataclass
class Stats:
    """What the server saw and served. `server.stats` is a consistent snapshot."""

    requests: int = 0  # HTTP requests read, on every route
    by_status: Counter[int] = field(default_factory=Counter)  # responses sent, by status
    by_route: Counter[str] = field(default_factory=Counter)  # e.g. "GET /v1/batches/{id}"
    chat_requests: int = 0  # well-formed, authenticated chat completion requests
    # Chat completions sent with a valid 200 (incl. "length") to a client still connected;
    # an answer whose client left while it was being made (e.g. a timeout) is not counted.
    completions: int = 0
    rate_limited: int = 0  # 429s sent by the rate limiter (scripted ones are in faults)
    faults: Counter[str] = field(default_factory=Counter)  # faults injected, by kind
    in_flight: int = 0  # requests being handled now
    peak_in_flight: int = 0
    authorizations: Counter[str] = field(default_factory=Counter)  # Authorization headers seen
    prompt_tokens: int = 0  # usage of completions and batch answers
    completion_tokens: int = 0
    # prompt_key(messages) -> times answered with a valid completion (as counted in
    # completions, plus batch answers)
    served_prompts: Counter[str] = field(default_factory=Counter)
    served_custom_ids: Counter[str] = field(default_factory=Counter)  # batch answers
    files_uploaded: int = 0
    batches_created: int = 0
    batch_requests_answered: int = 0  # batch lines answered with status 200
    fine_tuning_jobs_created: int = 0

    def to_json(self) -> Json:
        return {
            f.name: dict(value) if isinstance(value := getattr(self, f.name), Counter) else value
            for f in fields(self)
        }


def prompt_key(messages: list[Json]) -> str:
    """The key of a message list in `Stats.served_prompts`."""
    canonical = json.dumps(messages, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# -- fine-tuning (factory finetune) ---------------------------------------------------------
#
# /v1/fine_tuning/jobs as OpenAI serves it: create (training and validation files uploaded
# with purpose "fine-tune"), retrieve, list (newest first, `after`/`limit`, `metadata[k]=v`
# filters), events (newest first) and cancel, plus GET /v1/files to list uploads. A job moves
# validating_files -> queued -> running -> succeeded in about `FineTuningConfig.seconds`,
# writing events as it goes; a training file that breaks the format rules fails the job
# during validation with OpenAI's error object (code, message, param), as OpenAI does.

FINE_TUNABLE = (
    "gpt-4o-mini-2024-07-18",
    "gpt-4o-2024-08-06",
    "gpt-4.1-2025-04-14",
    "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano-2025-04-14",
    "gpt-3.5-turbo-0125",
    "gpt-4o-mini",  # undated names OpenAI also takes
    "gpt-3.5-turbo",
)
MIN_EXAMPLES = 10


@dataclass(frozen=True)
class JobOutcome:
    """How a job ends when its files are valid: succeeded, or failed with `error`."""

    error: Json | None = None  # {"code", "message", "param"}: the job fails with it


@dataclass
class FineTuningConfig:
    seconds: float = 1.0  # from validating_files to the end
    outcome: Callable[[int], JobOutcome] | None = None  # n-th job (0-based) -> how it ends
    # n-th jobs.create call (0-based) -> an HTTP status to refuse it with, "drop" to close
    # the connection unanswered, "lost" to create the job and then close the connection
    # before answering, or None to accept it.
    create_error: Callable[[int], int | Literal["drop", "lost"] | None] | None = None
    organization: str = "kahani-test"


def _fine_tune_file_error(content: bytes, role: str) -> Json | None:
    """The first format problem of a fine-tuning file, as OpenAI reports it, or None."""

    def error(message: str) -> Json:
        return {"code": f"invalid_{role}_file", "message": message, "param": f"{role}_file"}

    examples = [line for line in content.decode("utf-8", "replace").splitlines() if line.strip()]
    for number, raw in enumerate(examples, start=1):
        try:
            example = json.loads(raw)
        except json.JSONDecodeError:
            return error(f"Invalid file format. Line {number} is not valid JSON.")
        messages = example.get("messages") if isinstance(example, dict) else None
        if not isinstance(messages, list) or not messages:
            return error(f"Invalid file format. Example {number} is missing key 'messages'.")
        for index, message in enumerate(messages, start=1):
            if not isinstance(message, dict) or message.get("role") not in (
                "system",
                "user",
                "assistant",
            ):
                shown = message.get("role") if isinstance(message, dict) else message
                return error(
                    f"Invalid file format. Example {number}, message {index}: "
                    f"unrecognized role {shown!r}."
                )
            if not isinstance(message.get("content"), str):
                return error(
                    f"Invalid file format. Example {number}, message {index} has no content."
                )
        if not any(m["role"] == "assistant" for m in messages):
            return error(f"Invalid file format. Example {number} has no assistant message.")
    if role == "training" and len(examples) < MIN_EXAMPLES:
        return error(
            f"Training file has {len(examples)} example(s), but must have at least "
            f"{MIN_EXAMPLES} examples"
        )
    return None


def _auto_epochs(examples: int) -> int:
    """OpenAI's default epochs for a dataset size (its cookbook's description)."""
    if examples * 3 < 100:
        return min(25, -(-100 // max(examples, 1)))
    if examples * 3 > 25_000:
        return max(1, 25_000 // examples)
    return 3


class _FineTuningAPI:
    """The fine-tuning routes, mixed into FakeOpenAI (which owns the files and the loop)."""

    # FakeOpenAI's, used here:
    config: ServerConfig
    _files: dict[str, _File]
    _lock: threading.Lock
    _stats: Stats
    _spawn: Callable[[Coroutine[Any, Any, None]], None]
    _add_file: Callable[[str, str, bytes], _File]

    def _start_fine_tuning(self) -> list[tuple[str, str, _Handler]]:
        self._jobs: dict[str, Json] = {}  # insertion order = creation order
        self._job_events: dict[str, list[Json]] = {}
        self._job_create_calls = 0
        return [
            ("GET", "/v1/files", self._list_files),
            ("POST", "/v1/fine_tuning/jobs", self._create_job),
            ("GET", "/v1/fine_tuning/jobs", self._list_jobs),
            ("GET", "/v1/fine_tuning/jobs/{id}", self._retrieve_job),
            ("GET", "/v1/fine_tuning/jobs/{id}/events", self._list_job_events),
            ("POST", "/v1/fine_tuning/jobs/{id}/cancel", self._cancel_job),
        ]

    async def _list_files(self, request: _Request, _: str) -> _Response:
        purpose = parse_qs(request.query).get("purpose", [None])[0]
        listed = [f.to_json() for f in reversed(self._files.values())]
        data = [f for f in listed if purpose is None or f["purpose"] == purpose]
        return _json_response(200, {"object": "list", "data": data, "has_more": False})

    async def _create_job(self, request: _Request, _: str) -> _Response:
        body = _json_body(request)
        settings = self.config.fine_tuning
        call = self._job_create_calls
        self._job_create_calls += 1
        refusal = settings.create_error(call) if settings.create_error else None
        if refusal == "drop":
            return _Response(0, b"", drop=True)
        if refusal is not None and refusal != "lost":
            return _error(
                refusal,
                f"Job creation refused by the test server (HTTP {refusal}).",
                kind="server_error" if refusal >= 500 else "invalid_request_error",
            )
        model = body.get("model")
        if model not in FINE_TUNABLE:
            raise _ApiError(
                _error(
                    400,
                    f"Model {model} is not available for fine-tuning or does not exist.",
                    param="model",
                    code="model_not_available",
                )
            )
        files = {}
        for role in ("training", "validation"):
            file_id = body.get(f"{role}_file")
            if file_id is None and role == "validation":
                continue
            if file_id not in self._files:
                raise _ApiError(
                    _error(
                        400,
                        f"invalid {role}_file: {file_id}",
                        param=f"{role}_file",
                        code="invalid_request_error",
                    )
                )
            file = self._files[file_id]
            if file.purpose != "fine-tune":
                raise _ApiError(
                    _error(
                        400,
                        f"File {file.id} has purpose {file.purpose!r}; fine-tuning needs "
                        "files uploaded with purpose 'fine-tune'.",
                        param=f"{role}_file",
                    )
                )
            files[role] = file
        suffix = body.get("suffix")
        if suffix is not None and (not isinstance(suffix, str) or len(suffix) > 64):
            raise _ApiError(
                _error(400, "suffix must be a string of at most 64 characters.", param="suffix")
            )
        method = body.get("method") or {"type": "supervised", "supervised": {}}
        given = ((method.get("supervised") or {}).get("hyperparameters")) or body.get(
            "hyperparameters"
        ) or {}  # fmt: skip
        allowed = {
            "n_epochs": lambda v: isinstance(v, int) and 1 <= v <= 50,
            "batch_size": lambda v: isinstance(v, int) and 1 <= v <= 256,
            "learning_rate_multiplier": lambda v: isinstance(v, int | float) and 0 < v <= 10,
        }
        for name, value in given.items():
            if name not in allowed or not (value == "auto" or allowed[name](value)):
                raise _ApiError(
                    _error(
                        400,
                        f"Invalid value for hyperparameter {name!r}: {value!r}.",
                        param=f"method.supervised.hyperparameters.{name}",
                    )
                )
        now = int(time.time())
        job_id = f"ftjob-{uuid.uuid4().hex[:24]}"
        job: Json = {
            "id": job_id,
            "object": "fine_tuning.job",
            "created_at": now,
            "error": None,
            "fine_tuned_model": None,
            "finished_at": None,
            "hyperparameters": {
                "batch_size": given.get("batch_size", "auto"),
                "learning_rate_multiplier": given.get("learning_rate_multiplier", "auto"),
                "n_epochs": given.get("n_epochs", "auto"),
            },
            "model": model,
            "organization_id": f"org-{settings.organization}",
            "result_files": [],
            "seed": body.get("seed") if body.get("seed") is not None else random.randrange(2**31),
            "status": "validating_files",
            "trained_tokens": None,
            "training_file": files["training"].id,
            "validation_file": files["validation"].id if "validation" in files else None,
            "estimated_finish": None,
            "integrations": [],
            "metadata": body.get("metadata"),
            "user_provided_suffix": suffix,
            "method": {"type": "supervised", "supervised": {"hyperparameters": {}}},
        }
        index = len(self._jobs)
        self._jobs[job_id] = job
        self._job_events[job_id] = []
        self._job_event(job, f"Created fine-tuning job: {job_id}")
        self._job_event(job, f"Validating training file: {files['training'].id}")
        with self._lock:
            self._stats.fine_tuning_jobs_created += 1
        outcome = settings.outcome(index) if settings.outcome else JobOutcome()
        self._spawn(self._run_job(job, files, outcome))
        return _Response(0, b"", drop=True) if refusal == "lost" else _json_response(200, job)

    def _job_event(self, job: Json, message: str, level: str = "info", data: Json | None = None):
        self._job_events[job["id"]].append(
            {
                "id": f"ftevent-{uuid.uuid4().hex[:24]}",
                "object": "fine_tuning.job.event",
                "created_at": int(time.time()),
                "level": level,
                "message": message,
                "data": data or {},
                "type": "metrics" if data else "message",
            }
        )

    async def _run_job(self, job: Json, files: dict[str, _File], outcome: JobOutcome) -> None:
        step = self.config.fine_tuning.seconds / 8
        await asyncio.sleep(step)
        if job["status"] != "validating_files":
            return  # cancelled meanwhile
        error = outcome.error
        for role, file in files.items():
            error = error or _fine_tune_file_error(file.content, role)
        if error is not None:
            job.update(status="failed", error=error, finished_at=int(time.time()))
            self._job_event(job, error["message"], level="error")
            return
        examples = [json.loads(line) for line in files["training"].content.splitlines() if line]
        hyper = job["hyperparameters"]
        if hyper["n_epochs"] == "auto":
            hyper["n_epochs"] = _auto_epochs(len(examples))
        if hyper["batch_size"] == "auto":
            hyper["batch_size"] = 1
        if hyper["learning_rate_multiplier"] == "auto":
            hyper["learning_rate_multiplier"] = 1.8
        job["method"]["supervised"]["hyperparameters"] = dict(hyper)
        self._job_event(job, "Files validated, moving job to queued state")
        job["status"] = "queued"
        await asyncio.sleep(step)
        if job["status"] != "queued":
            return
        job.update(status="running", estimated_finish=int(time.time()) + 60)
        self._job_event(job, "Fine-tuning job started")
        total = hyper["n_epochs"] * -(-len(examples) // hyper["batch_size"])
        shown = sorted({max(1, total * k // 4) for k in range(1, 5)})
        for number in shown:
            await asyncio.sleep(step)
            if job["status"] != "running":
                return
            loss = round(2.0 / (1 + number), 4)
            self._job_event(
                job,
                f"Step {number}/{total}: training loss={loss}",
                data={"step": number, "train_loss": loss, "total_steps": total},
            )
        words = sum(
            len(_message_text(m.get("content")).split()) + 3
            for e in examples
            for m in e["messages"]
        )
        results = "step,train_loss\n" + "".join(f"{n},{2.0 / (1 + n):.4f}\n" for n in shown)
        result = self._add_file(f"{job['id']}-results.csv", "fine-tune-results", results.encode())
        organization = self.config.fine_tuning.organization
        suffix = job["user_provided_suffix"] or ""
        # Named from what it learned, so the same data and settings give the same name.
        digest = hashlib.sha256(files["training"].content + f"{job['model']}:{suffix}".encode())
        job.update(
            status="succeeded",
            fine_tuned_model=f"ft:{job['model']}:{organization}:{suffix}:{digest.hexdigest()[:8]}",
            finished_at=int(time.time()),
            trained_tokens=words * hyper["n_epochs"],
            result_files=[result.id],
            estimated_finish=None,
        )
        self._job_event(job, f"New fine-tuned model created: {job['fine_tuned_model']}")
        self._job_event(job, "The job has successfully completed")

    def _job(self, job_id: str) -> Json:
        if job_id not in self._jobs:
            raise _ApiError(
                _error(
                    404,
                    f"Could not find fine-tuning job {job_id}.",
                    param="fine_tuning_job_id",
                    code="fine_tuning_job_not_found",
                )
            )
        return self._jobs[job_id]

    async def _retrieve_job(self, _: _Request, job_id: str) -> _Response:
        return _json_response(200, self._job(job_id))

    async def _cancel_job(self, _: _Request, job_id: str) -> _Response:
        job = self._job(job_id)
        if job["status"] not in ("validating_files", "queued", "running"):
            raise _ApiError(
                _error(400, f"Cannot cancel a job with status '{job['status']}'.", param=None)
            )
        job.update(status="cancelled", finished_at=int(time.time()), estimated_finish=None)
        self._job_event(job, "Fine-tuning job cancelled")
        return _json_response(200, job)

    async def _list_jobs(self, request: _Request, _: str) -> _Response:
        query = parse_qs(request.query)
        wanted = {
            match.group(1): values[0]
            for key, values in query.items()
            if (match := re.fullmatch(r"metadata\[(.+)\]", key))
        }
        newest_first = [
            job
            for job in reversed(self._jobs.values())
            if all((job.get("metadata") or {}).get(k) == v for k, v in wanted.items())
        ]
        return _json_response(200, _page(newest_first, query))

    async def _list_job_events(self, request: _Request, job_id: str) -> _Response:
        self._job(job_id)
        newest_first = list(reversed(self._job_events[job_id]))
        return _json_response(200, _page(newest_first, parse_qs(request.query)))


def _page(newest_first: list[Json], query: dict[str, list[str]]) -> Json:
    """One page of a cursor-paginated list (`after`, `limit`), as OpenAI's lists are."""
    limit = min(100, int(query.get("limit", ["20"])[0]))
    if "after" in query:
        ids = [item["id"] for item in newest_first]
        after = query["after"][0]
        newest_first = newest_first[ids.index(after) + 1 :] if after in ids else []
    return {"object": "list", "data": newest_first[:limit], "has_more": len(newest_first) > limit}


class FakeOpenAI(_FineTuningAPI):
    """The server. `start()` binds 127.0.0.1 (a free port unless `port` is given) and serves
    from a daemon thread; `stop()` or leaving the `with` block shuts it down."""

    def __init__(
        self, config: ServerConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config or ServerConfig()
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._stats = Stats()
        self._rng = random.Random(self.config.seed)
        self._request_bucket: _Bucket | None = None
        self._token_bucket: _Bucket | None = None
        self._chat_index = 0
        self._chat_in_flight = 0
        self._jitter = random.Random(self.config.seed + 1)  # apart: faults stay as they were
        self._batch_create_calls = 0
        self._files: dict[str, _File] = {}
        self._batches: dict[str, Json] = {}  # insertion order = creation order
        self._tasks: set[asyncio.Task[Any]] = set()  # connections and batches
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._routes: list[tuple[str, re.Pattern[str], str, _Handler]] = [
            (method, re.compile(pattern.replace("{id}", "(?P<id>[^/]+)")), pattern, handler)
            for method, pattern, handler in [
                ("POST", "/v1/chat/completions", self._chat),
                ("POST", "/v1/files", self._upload_file),
                ("GET", "/v1/files/{id}", self._retrieve_file),
                ("DELETE", "/v1/files/{id}", self._delete_file),
                ("GET", "/v1/files/{id}/content", self._file_content),
                ("POST", "/v1/batches", self._create_batch),
                ("GET", "/v1/batches", self._list_batches),
                ("GET", "/v1/batches/{id}", self._retrieve_batch),
                ("POST", "/v1/batches/{id}/cancel", self._cancel_batch),
                ("GET", "/v1/models", self._list_models),
                ("GET", "/stats", self._get_stats),
                *self._start_fine_tuning(),
            ]
        ]

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def stats(self) -> Stats:
        with self._lock:
            return copy.deepcopy(self._stats)

    def reset_stats(self) -> None:
        with self._lock:
            in_flight = self._stats.in_flight
            self._stats = Stats(in_flight=in_flight, peak_in_flight=in_flight)

    def start(self) -> Self:
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            raise self._start_error
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            server = await asyncio.start_server(
                self._connection, self.host, self.port, backlog=4096
            )
        except OSError as error:
            self._start_error = error
            self._ready.set()
            return
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stopping.wait()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("fake OpenAI server task failed", exc_info=task.exception())

    # -- HTTP --------------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                try:
                    request = await _read_request(reader, writer)
                except _BadRequest as error:
                    await _write(writer, _error(400, str(error)), keep_alive=False)
                    return
                if request is None:
                    return
                with self._lock:
                    self._stats.requests += 1
                    self._stats.in_flight += 1
                    self._stats.peak_in_flight = max(
                        self._stats.peak_in_flight, self._stats.in_flight
                    )
                try:
                    response = await self._dispatch(request)
                finally:
                    with self._lock:
                        self._stats.in_flight -= 1
                if response.drop or reader.at_eof():
                    return  # no answer, or none wanted: the client went away meanwhile
                with self._lock:
                    self._stats.by_status[response.status] += 1
                await _write(writer, response, keep_alive=request.keep_alive)
                if response.on_sent is not None:
                    response.on_sent()
                if response.truncate_at is not None or not request.keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # shutting down; a cancelled handler would make asyncio log a traceback
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _dispatch(self, request: _Request) -> _Response:
        for method, pattern, name, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match is None or method != request.method:
                continue
            with self._lock:
                self._stats.by_route[f"{method} {name}"] += 1
                self._stats.authorizations[request.headers.get("authorization", "")] += 1
            if name.startswith("/v1/") and not self._authorized(request):
                key = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
                shown = f"{key[:3]}***{key[-4:]}" if len(key) > 8 else key
                message = (
                    f"Incorrect API key provided: {shown}. You can find your API key at "
                    "https://platform.openai.com/account/api-keys."
                    if key
                    else "You didn't provide an API key. You need to provide your API key in "
                    "an Authorization header using Bearer auth (i.e. Authorization: Bearer "
                    "YOUR_KEY)."
                )
                return _error(401, message, code="invalid_api_key")
            try:
                return await handler(request, match.group("id") if "{id}" in name else "")
            except _ApiError as error:
                return error.response
            except Exception:
                log.exception("fake OpenAI server failed on %s %s", request.method, request.path)
                return _error(
                    500,
                    "The server had an error while processing your request.",
                    kind="server_error",
                )
        return _error(404, f"Invalid URL ({request.method} {request.path})")

    def _authorized(self, request: _Request) -> bool:
        expected = self.config.api_key
        return expected is None or request.headers.get("authorization") == f"Bearer {expected}"

    # -- chat completions --------------------------------------------------------------------

    async def _chat(self, request: _Request, _: str) -> _Response:
        body = _json_body(request)
        for name in ("model", "messages"):
            if not body.get(name):
                raise _ApiError(
                    _error(
                        400,
                        f"Missing required parameter: '{name}'.",
                        param=name,
                        code="missing_required_parameter",
                    )
                )
        config = self.config
        with self._lock:
            self._stats.chat_requests += 1
        limit = body.get("max_completion_tokens") or body.get("max_tokens") or 0
        headers, refusal = self._admit(_count_tokens(body["messages"]) + limit, body["model"])
        if refusal is not None:
            with self._lock:
                self._stats.rate_limited += 1
            return refusal
        index = self._chat_index
        self._chat_index += 1
        draw = self._rng.random()
        fault = config.fault(index, body) if config.fault else None
        if fault is None and index < config.fail_first_n:
            fault = "500"
        if fault is None:
            fault = _drawn_fault(draw, config.fault_rates)
        if fault is not None:
            if fault not in FAULTS:
                raise ValueError(f"unknown fault kind {fault!r}; known: {FAULTS}")
            with self._lock:
                self._stats.faults[fault] += 1
        self._chat_in_flight += 1
        try:
            if config.latency > 0:
                load = max(1.0, self._chat_in_flight / config.capacity) if config.capacity else 1.0
                jitter = (
                    self._jitter.lognormvariate(0, config.latency_jitter)
                    if config.latency_jitter
                    else 1.0
                )
                await asyncio.sleep(config.latency * load * jitter)
            response = await self._chat_answer(body, fault)
        finally:
            self._chat_in_flight -= 1
        response.headers.update(headers)
        return response

    async def _chat_answer(self, body: Json, fault: Fault | None) -> _Response:
        match fault:
            case "400":
                message = (
                    "This model's maximum context length is 128000 tokens. However, your "
                    "messages resulted in more tokens. Please reduce the length of the messages."
                )
                return _error(400, message, param="messages", code="context_length_exceeded")
            case "429":
                wait = self.config.retry_after_s
                return _rate_limit_error(
                    f"Rate limit reached for {body['model']}. Please try again in {wait:g}s.",
                    kind="requests",
                    retry_after=wait,
                )
            case "quota":
                message = (
                    "You exceeded your current quota, please check your plan and billing details."
                )
                return _error(429, message, kind="insufficient_quota", code="insufficient_quota")
            case "500":
                return _error(
                    500,
                    "The server had an error while processing your request. Sorry about that!",
                    kind="server_error",
                )
            case "503":
                return _error(
                    503,
                    "The engine is currently overloaded, please try again later",
                    kind="server_error",
                )
            case "timeout":
                await asyncio.sleep(self.config.hang_seconds)
                return _Response(0, b"", drop=True)
            case "drop":
                return _Response(0, b"", drop=True)
        completion = self._complete(body, cut=fault == "length")
        response = _streamed(completion, body) if body.get("stream") else None
        response = response or _json_response(200, completion)
        if fault == "malformed":
            response.body = response.body[: len(response.body) // 2]
        elif fault == "truncated":
            response.truncate_at = len(response.body) // 2
        else:
            response.on_sent = functools.partial(self._count_completion, body, completion["usage"])
        return response

    def _count_completion(self, body: Json, usage: Json) -> None:
        with self._lock:
            self._stats.completions += 1
        self._count_served(body, usage)

    def _complete(self, body: Json, *, cut: bool) -> Json:
        """The chat.completion object answering `body`; `cut` forces finish_reason "length"."""
        text = self.config.respond(body)
        words = list(re.finditer(r"\S+", text))
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        keep = len(words) // 2 if cut else limit if limit and len(words) > limit else None
        finish_reason = "stop"
        if keep is not None:
            text = text[: words[keep - 1].end()] if keep > 0 else ""
            finish_reason = "length"
        prompt_tokens = _count_tokens(body["messages"])
        completion_tokens = len(text.split())
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": "fp_kahani_fake",
        }

    def _count_served(self, body: Json, usage: Json, custom_id: str | None = None) -> None:
        with self._lock:
            self._stats.served_prompts[prompt_key(body["messages"])] += 1
            self._stats.prompt_tokens += usage["prompt_tokens"]
            self._stats.completion_tokens += usage["completion_tokens"]
            if custom_id is not None:
                self._stats.served_custom_ids[custom_id] += 1
                self._stats.batch_requests_answered += 1

    def _admit(self, tokens: int, model: str) -> tuple[dict[str, str], _Response | None]:
        """Charge one request of `tokens` to the buckets: the x-ratelimit headers, and a
        429 answer when a bucket cannot pay (then nothing is charged)."""
        config, now = self.config, time.monotonic()
        if config.rpm is None:
            self._request_bucket = None
        elif self._request_bucket is None or self._request_bucket.per_minute != config.rpm:
            self._request_bucket = _Bucket(config.rpm, config.burst_s, now)
        if config.tpm is None:
            self._token_bucket = None
        elif self._token_bucket is None or self._token_bucket.per_minute != config.tpm:
            self._token_bucket = _Bucket(config.tpm, config.burst_s, now)
        charges = [
            (bucket, kind, amount)
            for bucket, kind, amount in [
                (self._request_bucket, "requests", 1),
                (self._token_bucket, "tokens", tokens),
            ]
            if bucket is not None
        ]
        refusal = None
        for bucket, kind, amount in charges:
            bucket.refill(now)
            if bucket.level >= amount:
                continue
            where = f"{model} in organization org-kahani-fake on {kind} per min"
            if amount > bucket.capacity:
                message = (
                    f"Request too large for {where}: Limit {bucket.per_minute}, Requested {amount}."
                )
                refusal = _rate_limit_error(message, kind=kind, retry_after=None)
            else:
                wait = (amount - bucket.level) / bucket.rate
                message = (
                    f"Rate limit reached for {where}: Limit {bucket.per_minute}, Used "
                    f"{bucket.per_minute - math.floor(bucket.level)}, Requested {amount}. "
                    f"Please try again in {_duration(wait)}."
                )
                refusal = _rate_limit_error(message, kind=kind, retry_after=wait)
            break
        if refusal is None:
            for bucket, _, amount in charges:
                bucket.level -= amount
        headers: dict[str, str] = {}
        for bucket, kind, _ in charges:
            headers[f"x-ratelimit-limit-{kind}"] = str(bucket.per_minute)
            headers[f"x-ratelimit-remaining-{kind}"] = str(max(0, math.floor(bucket.level)))
            headers[f"x-ratelimit-reset-{kind}"] = _duration(
                (bucket.capacity - bucket.level) / bucket.rate
            )
        if refusal is not None:
            refusal.headers.update(headers)
        return headers, refusal

    # -- files -------------------------------------------------------------------------------

    async def _upload_file(self, request: _Request, _: str) -> _Response:
        parts = _parse_multipart(request.body, request.headers.get("content-type", ""))
        if "file" not in parts:
            raise _ApiError(_error(400, "Missing required parameter: 'file'.", param="file"))
        if "purpose" not in parts:
            raise _ApiError(_error(400, "Missing required parameter: 'purpose'.", param="purpose"))
        filename, content = parts["file"]
        file = self._add_file(filename or "upload", parts["purpose"][1].decode(), content)
        with self._lock:
            self._stats.files_uploaded += 1
        return _json_response(200, file.to_json())

    def _add_file(self, filename: str, purpose: str, content: bytes) -> _File:
        file = _File(f"file-{uuid.uuid4().hex[:24]}", filename, purpose, content, int(time.time()))
        self._files[file.id] = file
        return file

    def _file(self, file_id: str) -> _File:
        if file_id not in self._files:
            raise _ApiError(_error(404, f"No such File object: {file_id}", param="id"))
        return self._files[file_id]

    async def _retrieve_file(self, _: _Request, file_id: str) -> _Response:
        return _json_response(200, self._file(file_id).to_json())

    async def _delete_file(self, _: _Request, file_id: str) -> _Response:
        del self._files[self._file(file_id).id]
        return _json_response(200, {"id": file_id, "object": "file", "deleted": True})

    async def _file_content(self, _: _Request, file_id: str) -> _Response:
        return _Response(200, self._file(file_id).content, "application/octet-stream")

    # -- batches -----------------------------------------------------------------------------

    async def _create_batch(self, request: _Request, _: str) -> _Response:
        body = _json_body(request)
        config = self.config
        call = self._batch_create_calls
        self._batch_create_calls += 1
        status = config.batch_create_error(call) if config.batch_create_error else None
        if status is not None:
            return _error(
                status,
                f"Batch creation refused by the test server (HTTP {status}).",
                kind="server_error" if status >= 500 else "invalid_request_error",
            )
        file = self._file(str(body.get("input_file_id")))
        if file.purpose != "batch":
            raise _ApiError(
                _error(
                    400,
                    f"File {file.id} has purpose {file.purpose!r}, expected 'batch'.",
                    param="input_file_id",
                )
            )
        if body.get("endpoint") != "/v1/chat/completions":
            raise _ApiError(
                _error(
                    400, "This test server only batches '/v1/chat/completions'.", param="endpoint"
                )
            )
        if body.get("completion_window") != "24h":
            raise _ApiError(
                _error(
                    400,
                    "Invalid value for 'completion_window': expected '24h'.",
                    param="completion_window",
                )
            )
        now = int(time.time())
        batch: Json = {
            "id": f"batch_{uuid.uuid4().hex[:24]}",
            "object": "batch",
            "endpoint": body["endpoint"],
            "model": None,
            "errors": None,
            "input_file_id": file.id,
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + 24 * 3600,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "usage": None,
            "metadata": body.get("metadata"),
        }
        index = len(self._batches)
        self._batches[batch["id"]] = batch
        with self._lock:
            self._stats.batches_created += 1
        outcome = config.batch_outcome(index) if config.batch_outcome else BatchOutcome()
        self._spawn(self._run_batch(batch, file.content, outcome))
        return _json_response(200, batch)

    async def _run_batch(self, batch: Json, content: bytes, outcome: BatchOutcome) -> None:
        """Move `batch` through its statuses in about batch_seconds, answering its lines."""
        step = self.config.batch_seconds / 10
        await asyncio.sleep(step)
        lines, errors = _parse_batch_input(content)
        if outcome.status == "failed" and not errors:
            errors = [_batch_error("failed", "The batch failed (scripted by the test server).")]
        if batch["status"] == "validating" and errors:
            batch.update(
                status="failed",
                failed_at=int(time.time()),
                errors={"object": "list", "data": errors},
            )
            return
        counts = batch["request_counts"]
        counts["total"] = len(lines)
        batch["model"] = lines[0]["body"]["model"] if lines else None
        usage = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
        batch["usage"] = usage
        if batch["status"] == "validating":
            batch.update(status="in_progress", in_progress_at=int(time.time()))
        answered = len(lines) if outcome.status == "completed" else outcome.answered
        outputs: list[Json] = []
        failures: list[Json] = []
        for line in lines[:answered]:
            if batch["status"] != "in_progress":
                break
            await asyncio.sleep(8 * step / max(len(lines), 1))
            result = self._batch_answer(line)
            if result["response"]["status_code"] == 200:
                outputs.append(result)
                counts["completed"] += 1
                line_usage = result["response"]["body"]["usage"]
                usage["input_tokens"] += line_usage["prompt_tokens"]
                usage["output_tokens"] += line_usage["completion_tokens"]
                usage["total_tokens"] += line_usage["total_tokens"]
            else:
                failures.append(result)
                counts["failed"] += 1
        if outcome.status == "cancelled" and batch["status"] == "in_progress":
            batch.update(status="cancelling", cancelling_at=int(time.time()))
        if batch["status"] == "cancelling":
            await asyncio.sleep(step)
            final = "cancelled"
        elif outcome.status == "expired":
            final = "expired"
            unanswered = lines[counts["completed"] + counts["failed"] :]
            failures += [
                {
                    "id": f"batch_req_{uuid.uuid4().hex[:24]}",
                    "custom_id": line["custom_id"],
                    "response": None,
                    "error": {
                        "code": "batch_expired",
                        "message": "This request could not be executed before the completion "
                        "window expired.",
                    },
                }
                for line in unanswered
            ]
            counts["failed"] += len(unanswered)
        else:
            batch.update(status="finalizing", finalizing_at=int(time.time()))
            await asyncio.sleep(step)
            final = "completed"
        for key, results, purpose in [
            ("output_file_id", outputs, "batch_output"),
            ("error_file_id", failures, "batch_output"),
        ]:
            if results:
                jsonl = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results)
                batch[key] = self._add_file(
                    f"{batch['id']}_{key}.jsonl", purpose, jsonl.encode()
                ).id
        batch.update(status=final, **{f"{final}_at": int(time.time())})

    def _batch_answer(self, line: Json) -> Json:
        """One line of a batch's output or error file."""
        custom_id, body = line["custom_id"], line["body"]
        request_id = f"req_{uuid.uuid4().hex}"
        if custom_id in self.config.batch_fail_ids:
            response = {
                "status_code": 500,
                "request_id": request_id,
                "body": json.loads(
                    _error(
                        500,
                        "The server had an error while processing your request.",
                        kind="server_error",
                    ).body
                ),
            }
        else:
            completion = self._complete(body, cut=False)
            self._count_served(body, completion["usage"], custom_id)
            response = {"status_code": 200, "request_id": request_id, "body": completion}
        return {
            "id": f"batch_req_{uuid.uuid4().hex[:24]}",
            "custom_id": custom_id,
            "response": response,
            "error": None,
        }

    def _batch(self, batch_id: str) -> Json:
        if batch_id not in self._batches:
            raise _ApiError(_error(404, f"No batch found with id '{batch_id}'.", param="id"))
        return self._batches[batch_id]

    async def _retrieve_batch(self, _: _Request, batch_id: str) -> _Response:
        return _json_response(200, self._batch(batch_id))

    async def _cancel_batch(self, _: _Request, batch_id: str) -> _Response:
        batch = self._batch(batch_id)
        if batch["status"] not in ("validating", "in_progress"):
            raise _ApiError(_error(400, f"Cannot cancel a batch with status '{batch['status']}'."))
        batch.update(status="cancelling", cancelling_at=int(time.time()))
        return _json_response(200, batch)

    async def _list_batches(self, request: _Request, _: str) -> _Response:
        query = parse_qs(request.query)
        limit = min(100, int(query.get("limit", ["20"])[0]))
        newest_first = list(reversed(self._batches.values()))
        if "after" in query:
            ids = [batch["id"] for batch in newest_first]
            after = query["after"][0]
            newest_first = newest_first[ids.index(after) + 1 :] if after in ids else []
        page = newest_first[:limit]
        return _json_response(
            200,
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(newest_first) > limit,
            },
        )

    async def _get_stats(self, _: _Request, __: str) -> _Response:
        return _json_response(200, self.stats.to_json())

    async def _list_models(self, _: _Request, __: str) -> _Response:
        """Clients such as g4f ask which models exist before they send anything."""
        models = [
            {"id": name, "object": "model", "created": 0, "owned_by": "kahani-test"}
            for name in ("gpt-4o-mini", "gpt-4o")
        ]
        return _json_response(200, {"object": "list", "data": models})


# -- HTTP plumbing ---------------------------------------------------------------------------


@dataclass
class _Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    keep_alive: bool


@dataclass
class _Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without sending anything
    truncate_at: int | None = None  # send this many bytes of the body, then close
    on_sent: Callable[[], None] | None = None  # called once the answer is written


_Handler = Callable[[_Request, str], Awaitable[_Response]]


class _BadRequest(Exception):
    """A request that is not HTTP/1.x the server can read."""


class _ApiError(Exception):
    """Raised by a handler to answer with an OpenAI error."""

    def __init__(self, response: _Response) -> None:
        super().__init__(response.status)
        self.response = response


async def _read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> _Request | None:
    """The next request on a connection, or None when the client closed it."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if error.partial.strip():
            raise _BadRequest("incomplete request head") from None
        return None
    except asyncio.LimitOverrunError:
        raise _BadRequest("request head too large") from None
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, version = request_line.split(" ")
    except ValueError:
        raise _BadRequest(f"bad request line {request_line!r}") from None
    headers = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    else:
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise _BadRequest("bad Content-Length") from None
        body = await reader.readexactly(length)
    connection = headers.get("connection", "").lower()
    keep_alive = connection == "keep-alive" if version == "HTTP/1.0" else connection != "close"
    url = urlsplit(target)
    return _Request(method, url.path, url.query, headers, body, keep_alive)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            raise _BadRequest("bad chunk size") from None
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def _write(writer: asyncio.StreamWriter, response: _Response, *, keep_alive: bool) -> None:
    headers = {
        "content-type": response.content_type,
        "content-length": str(len(response.body)),
        "connection": "keep-alive" if keep_alive else "close",
        "x-request-id": f"req_{uuid.uuid4().hex}",
        "openai-version": "2020-10-01",
        **response.headers,
    }
    reason = HTTPStatus(response.status).phrase
    head = f"HTTP/1.1 {response.status} {reason}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()
    )
    writer.write(head.encode("latin-1") + b"\r\n" + response.body[: response.truncate_at])
    await writer.drain()


def _json_response(status: int, payload: Json) -> _Response:
    return _Response(status, json.dumps(payload, ensure_ascii=False).encode())


def _error(
    status: int,
    message: str,
    *,
    kind: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> _Response:
    """An answer with OpenAI's error body."""
    payload = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return _json_response(status, payload)


def _rate_limit_error(message: str, *, kind: str, retry_after: float | None) -> _Response:
    response = _error(429, message, kind=kind, code="rate_limit_exceeded")
    if retry_after is not None:
        response.headers["retry-after"] = str(max(1, math.ceil(retry_after)))
        response.headers["retry-after-ms"] = str(max(1, math.ceil(retry_after * 1000)))
    return response


def _json_body(request: _Request) -> Json:
    try:
        body = json.loads(request.body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise _ApiError(
            _error(
                400,
                "We could not parse the JSON body of your request. (HINT: "
                "This likely means you aren't using your HTTP library correctly.)",
            )
        )
    return body


def _parse_multipart(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    """The parts of a multipart/form-data body: field name -> (filename, content)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/form-data") or match is None:
        raise _ApiError(_error(400, "Expected a multipart/form-data body."))
    parts: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(b"--" + match.group(1).encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, content = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        disposition = head.decode("utf-8", "replace")
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if name is not None:
            parts[name.group(1)] = (
                filename.group(1) if filename else None,
                content.removesuffix(b"\r\n"),
            )
    return parts


@dataclass
class _File:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int

    def to_json(self) -> Json:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


# -- rate limits, faults, batches ------------------------------------------------------------


class _Bucket:
    """A token bucket holding `per_minute * burst_s / 60`, refilled at `per_minute / 60`/s."""

    def __init__(self, per_minute: int, burst_s: float, now: float) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60
        self.capacity = max(1.0, self.rate * burst_s)
        self.level = self.capacity
        self.updated = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now


def _duration(seconds: float) -> str:
    """A duration the way OpenAI's x-ratelimit-reset-* headers write it: 120ms, 1s, 6m0s."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    text = f"{round(rest, 3):g}s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    return f"{hours}h{text}" if hours else text


def _drawn_fault(draw: float, rates: Mapping[str, float]) -> Fault | None:
    """The fault whose slice of [0, 1) holds `draw`, slices laid out in FAULTS order."""
    edge = 0.0
    for kind in FAULTS:
        edge += rates.get(kind, 0.0)
        if draw < edge:
            return kind
    return None


def _batch_error(code: str, message: str, line: int | None = None) -> Json:
    return {"code": code, "message": message, "param": None, "line": line}


def _parse_batch_input(content: bytes) -> tuple[list[Json], list[Json]]:
    """A batch input file's request lines, and its validation errors (one per bad line)."""
    lines: list[Json] = []
    errors: list[Json] = []
    seen: set[str] = set()
    for number, raw in enumerate(content.decode("utf-8", "replace").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            errors.append(_batch_error("invalid_json_line", "This line is not valid JSON.", number))
            continue
        missing = [
            key
            for key in ("custom_id", "method", "url", "body")
            if not isinstance(line, dict) or key not in line
        ]
        if missing:
            errors.append(
                _batch_error(
                    "missing_required_parameter",
                    f"Missing required parameter: '{missing[0]}'.",
                    number,
                )
            )
        elif line["url"] != "/v1/chat/completions" or line["method"] != "POST":
            errors.append(
                _batch_error(
                    "invalid_url",
                    "The url must be POST /v1/chat/completions, the batch's endpoint.",
                    number,
                )
            )
        elif line["custom_id"] in seen:
            errors.append(
                _batch_error(
                    "duplicate_custom_id",
                    f"The custom_id {line['custom_id']!r} is not unique.",
                    number,
                )
            )
        elif not (
            isinstance(line["body"], dict)
            and line["body"].get("model")
            and line["body"].get("messages")
        ):
            errors.append(
                _batch_error("invalid_request", "The body needs 'model' and 'messages'.", number)
            )
        else:
            seen.add(line["custom_id"])
            lines.append(line)
    if not lines and not errors:
        errors.append(_batch_error("empty_file", "The input file has no requests."))
    return lines, errors


# -- streamed chat completions (judge play) --------------------------------------------------


def _streamed(completion: Json, body: Json) -> _Response:
    """A chat completion as OpenAI streams it with `stream: true`: server-sent events of
    `chat.completion.chunk` objects (the role, then the text a word at a time, then the
    finish reason), a usage chunk when `stream_options.include_usage` asks for one, and
    `data: [DONE]`. The events are sent in one body: the client reads them the same way."""
    choice = completion["choices"][0]
    text = choice["message"]["content"]
    base = {
        "id": completion["id"],
        "object": "chat.completion.chunk",
        "created": completion["created"],
        "model": completion["model"],
        "system_fingerprint": completion["system_fingerprint"],
    }

    def chunk(delta: Json, finish_reason: str | None = None) -> Json:
        return base | {
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ]
        }

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
    chunks += [chunk({"content": word}) for word in re.findall(r"\s*\S+\s*", text)]
    chunks.append(chunk({}, choice["finish_reason"]))
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append(base | {"choices": [], "usage": completion["usage"]})
    events = "".join(f"data: {json.dumps(c, ensure_ascii=False)}\n\n" for c in chunks)
    return _Response(200, (events + "data: [DONE]\n\n").encode(), "text/event-stream")


# -- the default responder -------------------------------------------------------------------


def _message_text(content: object) -> str:
    """The text of a message's content: a string or a list of content parts."""
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def _last_user_text(messages: list[Json]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _message_text(message.get("content"))
    return ""


def _count_tokens(messages: list[Json]) -> int:
    """Rough prompt tokens: the words of every message."""
    return sum(len(_message_text(message.get("content")).split()) for message in messages)


@dataclass(frozen=True)
class _StoryKit:
    names: tuple[str, ...]
    opening: str  # sentences with {name}, {verb}, {noun}, {adjective}
    found: str
    likes: str
    fillers: tuple[str, ...]
    closing: str


_STORY_KITS = {
    "english": _StoryKit(
        ("Mia", "Ravi", "Anu", "Sam", "Lily", "Arjun"),
        "Once upon a time, there was a little child named {name}.",
        "One day, {name} found a {adjective} {noun} near the old tree.",
        "{name} wanted to {verb} all day long.",
        (
            "The sun was warm and the birds were singing.",
            "Mother smiled and gave {name} a big hug.",
            "A small dog came running to play.",
            "They laughed and ran around the garden.",
            "The wind moved the leaves softly.",
            "{name} shared a sweet mango with a friend.",
            "Soon the sky turned orange and pink.",
        ),
        "That night, {name} slept with a happy heart.",
    ),
    "hindi": _StoryKit(
        ("मीना", "राजू", "सोनू", "पिंकी", "अमन"),
        "एक छोटे से गाँव में {name} नाम का एक बच्चा रहता था।",
        "एक दिन {name} को पेड़ के पास एक {adjective} {noun} मिला।",
        "{name} को {verb} बहुत अच्छा लगता था।",
        (
            "सूरज चमक रहा था और चिड़ियाँ गा रही थीं।",
            "माँ ने मुस्कुराकर {name} को गले लगाया।",
            "एक छोटा कुत्ता खेलने के लिए दौड़ता हुआ आया।",
            "सब हँसते हुए बगीचे में दौड़े।",
            "हवा धीरे-धीरे पत्तों को हिला रही थी।",
            "{name} ने अपने दोस्त के साथ मीठा आम बाँटा।",
            "जल्दी ही आसमान नारंगी हो गया।",
        ),
        "उस रात {name} खुशी-खुशी सो गया।",
    ),
    "marathi": _StoryKit(
        ("मीना", "राजू", "आर्या", "ओम", "सई"),
        "एका छोट्या गावात {name} नावाचे एक मूल राहत होते.",
        "एके दिवशी {name}ला झाडाजवळ एक {adjective} {noun} सापडले.",
        "{name}ला {verb} खूप आवडायचे.",
        (
            "सूर्य चमकत होता आणि पक्षी गात होते.",
            "आईने हसून {name}ला मिठी मारली.",
            "एक लहान कुत्रा खेळायला धावत आला.",
            "सगळे हसत बागेत धावले.",
            "वारा हळूहळू पाने हलवत होता.",
            "{name}ने मित्रासोबत गोड आंबा वाटून खाल्ला.",
            "लवकरच आकाश केशरी झाले.",
        ),
        "त्या रात्री {name} आनंदाने झोपले.",
    ),
    "bangla": _StoryKit(
        ("মীনা", "রাজু", "টুনি", "অপু", "দীপু"),
        "একটা ছোট্ট গ্রামে {name} নামে একটি শিশু থাকত।",
        "একদিন {name} গাছের কাছে একটা {adjective} {noun} খুঁজে পেল।",
        "{name}-এর {verb} খুব ভালো লাগত।",
        (
            "সূর্য ঝলমল করছিল আর পাখিরা গান গাইছিল।",
            "মা হেসে {name}-কে জড়িয়ে ধরলেন।",
            "একটা ছোট্ট কুকুর খেলতে ছুটে এল।",
            "সবাই হাসতে হাসতে বাগানে দৌড়াল।",
            "হাওয়া আস্তে আস্তে পাতা দোলাচ্ছিল।",
            "{name} বন্ধুর সঙ্গে মিষ্টি আম ভাগ করে খেল।",
            "একটু পরেই আকাশ কমলা হয়ে গেল।",
        ),
        "সেই রাতে {name} খুশি মনে ঘুমিয়ে পড়ল।",
    ),
}

_HINGLISH_A = (
    "Arre yaar, kya scene hai aaj?",
    "Main soch raha tha ki weekend pe kuch plan karte hain.",
    "Sach mein? Mujhe laga tu busy hoga.",
    "Chal theek hai, main shaam ko call karta hoon.",
    "Bas yaar, office mein thoda kaam zyada tha.",
    "Tension mat le, sab sort ho jayega.",
    "Haan, aur chai bhi peete hain saath mein.",
    "Accha idea hai, main sabko message kar deta hoon.",
)
_HINGLISH_B = (
    "Haan bhai, sab badhiya. Tu bata?",
    "Bilkul, main totally in hoon.",
    "Nahi yaar, is baar main free hoon.",
    "Done, phir milte hain shaam ko.",
    "Arre wah, finally kuch interesting hoga.",
    "Theek hai, but thoda jaldi aana please.",
    "Sahi hai, main snacks le aaunga.",
    "Pakka, koi problem nahi.",
)


def _story(prompt: str, rng: random.Random) -> str:
    language = re.search(r"\bin (English|Hindi|Marathi|Bangla)\b", prompt)
    kit = _STORY_KITS[language.group(1).lower() if language else "english"]
    words = re.search(r'the verb "([^"]+)", the noun "([^"]+)" and the adjective "([^"]+)"', prompt)
    verb, noun, adjective = words.groups() if words else _UNNAMED_WORDS[kit_name(language)]
    fillers = rng.sample(kit.fillers, 4)
    name = rng.choice(kit.names)
    opening, name = _diversified(prompt, kit_name(language), kit.opening, name)
    paragraphs = [
        [opening, kit.found, fillers[0]],
        [kit.likes, fillers[1], fillers[2]],
        [fillers[3], kit.closing],
    ]
    story = "\n\n".join(
        " ".join(s.format(name=name, verb=verb, noun=noun, adjective=adjective) for s in paragraph)
        for paragraph in paragraphs
    )
    return json.dumps({"story": story}, ensure_ascii=False)


# -- diversity slots ----------------------------------------------------------------------
# `factory generate --diversify` names the main character and a narrative device; the stand-in
# uses the name and opens the way the device asks (a line of dialogue, a memory, a question...),
# as a model following the prompt would. Other prompts keep the kit's one opening, the formulaic
# "Once upon a time" that the diversity numbers in the README measure.

_DEVICE_OPENINGS = {
    "english": (
        ("dialogue", '"Come and see!" {name} called to a friend.'),
        ("flashback", "{name} still remembered the day of the {adjective} {noun}."),
        ("refrain", '"One more step," said {name}, "just one more step."'),
        ("letter", "Dear Grandma, this is {name}, and I have news for you."),
        ("question", "Have you ever seen a {adjective} {noun}?"),
        ("sound", "Whoosh! The wind blew {name}'s hat away."),
        ("dream", "One night, {name} dreamed of a {adjective} {noun}."),
        ("countdown", "Three, two, one! {name} was ready."),
        ("tries", "{name} tried once, and it did not work."),
    ),
    "hindi": (
        ("संवाद", '"जल्दी आओ!" {name} ने अपने दोस्त को पुकारा।'),
        ("फ़्लैशबैक", "{name} को आज भी वह दिन याद था।"),
        ("दोहराई", '"एक कदम और," {name} ने कहा, "बस एक कदम और।"'),
        ("चिट्ठी", "प्यारी दादी, मैं {name} हूँ और आपको एक बात बतानी है।"),
        ("सवाल", "क्या तुमने कभी कोई {adjective} {noun} देखा है?"),
        ("आवाज़", "धम्म! {name} के हाथ से गेंद गिर गई।"),
        ("सपना", "एक रात {name} ने एक सुंदर सपना देखा।"),
        ("गिनती", "तीन, दो, एक! {name} तैयार था।"),
        ("कोशिश", "{name} ने पहली बार कोशिश की, पर काम नहीं बना।"),
    ),
    "marathi": (
        ("संवाद", '"लवकर ये!" {name}ने मित्राला हाक मारली.'),
        ("फ्लॅशबॅक", "{name}ला तो दिवस अजूनही आठवत होता."),
        ("ओळ", '"अजून एक पाऊल," {name} म्हणाले, "फक्त एक पाऊल."'),
        ("पत्र", "प्रिय आजी, मी {name} बोलतोय, तुला एक गंमत सांगायची आहे."),
        ("प्रश्न", "तुम्ही कधी {adjective} {noun} पाहिले आहे का?"),
        ("आवाजाचा", "धप्प! {name}च्या हातातून चेंडू पडला."),
        ("स्वप्न", "एका रात्री {name}ला एक सुंदर स्वप्न पडले."),
        ("मोजणी", "तीन, दोन, एक! {name} तयार होते."),
        ("प्रयत्न", "{name}ने पहिल्यांदा प्रयत्न केला, पण जमले नाही."),
    ),
    "bangla": (
        ("কথোপকথন", '"তাড়াতাড়ি এসো!" {name} বন্ধুকে ডাকল।'),
        ("ফ্ল্যাশব্যাক", "{name}-এর আজও সেই দিনটার কথা মনে পড়ে।"),
        ("লাইন", '"আর এক পা," {name} বলল, "শুধু আর এক পা।"'),
        ("চিঠি", "প্রিয় ঠাকুমা, আমি {name}, তোমাকে একটা মজার কথা বলব।"),
        ("প্রশ্ন", "তোমরা কি কখনো {adjective} {noun} দেখেছ?"),
        ("শব্দধ্বনি", "ধপাস! {name}-এর হাত থেকে বলটা পড়ে গেল।"),
        ("স্বপ্ন", "এক রাতে {name} একটা সুন্দর স্বপ্ন দেখল।"),
        ("গোনা", "তিন, দুই, এক! {name} তৈরি।"),
        ("চেষ্টা", "{name} প্রথমবার চেষ্টা করল, কিন্তু হল না।"),
    ),
}


# A prompt that names no words (a translation, `factory generate --from-dataset`) gets a story
# with words of its own language, so a Hindi answer stays all Devanagari.
_UNNAMED_WORDS = {
    "english": ("play", "ball", "happy"),
    "hindi": ("खेलना", "गेंद", "खुश"),
    "marathi": ("खेळणे", "चेंडू", "आनंदी"),
    "bangla": ("খেলা", "বল", "খুশি"),
}


def kit_name(language: re.Match[str] | None) -> str:
    return language.group(1).lower() if language else "english"


def _diversified(prompt: str, language: str, opening: str, name: str) -> tuple[str, str]:
    """The opening sentence and name for a prompt with diversity slots: the name asked for,
    and the opening of the device asked for (the kit's own when none is recognized)."""
    asked_name = re.search(r"^The main character is called (.+)\.$", prompt, re.MULTILINE)
    device = re.search(r"narrative device: (.+?); let the first sentence", prompt)
    if device:
        for keyword, sentence in _DEVICE_OPENINGS[language]:
            if keyword in device.group(1):
                opening = sentence
                break
    return opening, asked_name.group(1) if asked_name else name


def _conversation(prompt: str, rng: random.Random) -> str:
    turns = re.search(r"exactly (\d+) turns", prompt)
    topic = re.search(r"talk about: (.+?)\.(?:\s|$)", prompt)
    pools = [rng.sample(_HINGLISH_A, len(_HINGLISH_A)), rng.sample(_HINGLISH_B, len(_HINGLISH_B))]
    conversation = [
        {"speaker": "AB"[i % 2], "text": pools[i % 2][(i // 2) % len(pools[i % 2])]}
        for i in range(int(turns.group(1)) if turns else 6)
    ]
    if conversation and topic:
        conversation[0]["text"] = f"Arre yaar, aaj {topic.group(1)} pe baat karte hain."
    return json.dumps({"conversation": conversation}, ensure_ascii=False)


# -- standalone ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a local stand-in for the OpenAI API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", help="require this key")
    parser.add_argument("--rpm", type=int, help="requests per minute")
    parser.add_argument("--tpm", type=int, help="tokens per minute")
    parser.add_argument("--burst-s", type=float, default=60.0, help="bucket size in seconds")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per completion")
    parser.add_argument("--latency-jitter", type=float, default=0.0, help="log-normal sigma")
    parser.add_argument(
        "--capacity", type=int, help="completions at full speed; more slow every one down"
    )
    parser.add_argument("--batch-seconds", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--judge-format", choices=JUDGE_FORMATS, default="asked")
    parser.add_argument(
        "--pairwise-preference", choices=get_args(PairwisePreference), default="longer"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND=RATE",
        help=f"inject a fault at random; KIND is one of {', '.join(FAULTS)}",
    )
    args = parser.parse_args(argv)
    try:
        rates = {kind: float(rate) for kind, _, rate in (s.partition("=") for s in args.fault)}
        config = ServerConfig(
            api_key=args.api_key,
            rpm=args.rpm,
            tpm=args.tpm,
            burst_s=args.burst_s,
            latency=args.latency,
            latency_jitter=args.latency_jitter,
            capacity=args.capacity,
            batch_seconds=args.batch_seconds,
            seed=args.seed,
            fault_rates=rates,
            judge_format=args.judge_format,
            pairwise_preference=args.pairwise_preference,
        )
    except ValueError as error:
        parser.error(str(error))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with FakeOpenAI(config, host=args.host, port=args.port) as server:
        print(server.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        print(json.dumps(server.stats.to_json(), ensure_ascii=False), file=sys.stderr)


if __name__ == "__main__":
    main()
