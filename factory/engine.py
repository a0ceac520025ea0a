"""The online engine: send each pending request once, under limits, with bounded retries.

Every request ends in the store as done (its answer committed) or failed (with its last
error); an interrupted run leaves the rest pending for the next invocation. How many
requests are in flight is decided by `concurrency.AdaptiveLimit`, how fast they leave by
`ratelimit.RateGate`.
"""

import asyncio
import hashlib
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from factory.concurrency import AdaptiveLimit
from factory.errors import KahaniError
from factory.pricing import count_chat_tokens
from factory.prompts import Message
from factory.providers.base import ChatRequest, GenerationParams, Provider, ProviderError
from factory.ratelimit import RateGate, backoff_delay
from factory.store import Answer, RunStore

# After Ctrl-C, requests in flight get this long to finish (their answers are paid for).
GRACE_SECONDS = 10.0
# This many requests in a row failing every attempt without any answer from the server
# (connection refused, timeouts) is an outage: stop, rather than burn through every prompt.
OUTAGE_STREAK = 3
# 429s ("rate limited, come back later") cost no attempt; a request gives up after waiting
# this long. A known rate is only slowed by them, until this many rounds come in a row.
RATE_LIMIT_PATIENCE = 900.0
RATE_LIMIT_STREAK = 3


def request_key(provider: str, messages: list[Message], params: GenerationParams) -> str:
    """The cache key: the same request to the same provider is never sent twice."""
    family = "openai" if provider.startswith("openai") else provider
    payload = [family, [m.model_dump() for m in messages], params.model_dump(exclude_none=True)]
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()


@dataclass(frozen=True)
class Job:
    prompt_id: str
    messages: list[Message]
    key: str


@dataclass
class Tally:
    """What this invocation did, for the progress line and the final summary."""

    total: int
    done: int = 0
    cached: int = 0
    failed: int = 0
    retries: int = 0
    rejected: int = 0  # answers the validators turned down (they are kept, with a reason)
    rate_limited: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    in_flight: int = 0
    limit: int = 0  # requests allowed in flight now
    note: str = ""  # what the engine is waiting for, when it is waiting
    started: float = field(default_factory=time.monotonic)

    def count(self, answer: Answer) -> None:
        self.done += 1
        self.prompt_tokens += answer.prompt_tokens
        self.completion_tokens += answer.completion_tokens


AnswerHook = Callable[[Tally, str, Answer], None]


class Engine(Protocol):
    """What `factory.llm` runs requests with: the online engine below, or the Batch API's
    (`factory.batch.BatchEngine`). Each commits every answer to the store as it arrives."""

    async def run(self, jobs: list[Job]) -> None:
        """Answer the jobs; return early once `stop()` was called."""
        ...

    def stop(self) -> None: ...

    async def close(self) -> None: ...


class OnlineEngine:
    """Requests one at a time over HTTP (or to a local model), as many in flight as the
    adaptive limit allows."""

    def __init__(
        self,
        provider: Provider,
        store: RunStore,
        params: GenerationParams,
        gate: RateGate,
        max_concurrency: int,
        max_attempts: int,
        tally: Tally,
        on_answer: AnswerHook,
    ) -> None:
        self.provider = provider
        self.store = store
        self.params = params
        self.gate = gate
        maximum = min(max_concurrency, provider.max_in_flight or max_concurrency)
        self.limit = AdaptiveLimit(maximum, gate.rate)
        self.max_attempts = max_attempts
        self.tally = tally
        self.on_answer = on_answer
        self.writer = store.answer_writer()
        self.stopping = asyncio.Event()
        self.outage: str | None = None
        self.fatal: KahaniError | None = None
        self._unanswered_streak = 0
        self._rate_limit_streak = 0  # rounds of 429s in a row, across all requests
        self._rate_limit_round_ends = 0.0

    def stop(self) -> None:
        self.stopping.set()
        self.limit.close()
        self.provider.interrupt()

    async def run(self, jobs: list[Job]) -> None:
        queue = deque(jobs)
        tasks: set[asyncio.Task[None]] = set()
        while queue and not self.stopping.is_set():
            await self.limit.acquire()
            if self.stopping.is_set():
                self.limit.release()
                break
            task = asyncio.create_task(self._send(queue.popleft()))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            stop = asyncio.create_task(self.stopping.wait())
            everything = asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.wait([everything, stop], return_when=asyncio.FIRST_COMPLETED)
            if self.stopping.is_set() and tasks:
                # No new request leaves now; give the ones in flight a moment to land.
                await asyncio.wait(list(tasks), timeout=GRACE_SECONDS)
                for task in tasks:
                    task.cancel()
            results = await everything
            stop.cancel()
            for result in results:
                if isinstance(result, BaseException) and not isinstance(
                    result, asyncio.CancelledError
                ):
                    raise result
        if self.fatal:
            raise self.fatal
        if self.outage:
            raise KahaniError(self.outage)

    async def close(self) -> None:
        await self.writer.close()
        await self.provider.close()

    async def _send(self, job: Job) -> None:
        slot = _Slot(self.limit)  # taken by `run` before this task started
        try:
            await self._attempts(job, slot)
        except KahaniError as err:  # no request can succeed (refused key, unknown model)
            self.fatal = self.fatal or err
            self.stop()
        finally:
            slot.release()

    async def _attempts(self, job: Job, slot: "_Slot") -> None:
        # Counting tokens costs CPU per request; only a tokens-per-minute limit needs it.
        estimate = 0
        if self.gate.tokens:
            estimate = count_chat_tokens(job.messages) + (self.params.max_tokens or 0)
        request = ChatRequest(custom_id=job.prompt_id, messages=job.messages, params=self.params)
        started, attempt = time.time(), 1
        while True:
            await self.gate.wait(estimate)
            if self.stopping.is_set():
                return  # left pending: the next invocation sends it
            sent, load = time.monotonic(), self.limit.in_flight
            self._show()
            try:
                result = await self.provider.complete(request)
            except ProviderError as err:
                if self.stopping.is_set():
                    return  # interrupted: left pending, the next invocation sends it
                if self._rate_limited(err):
                    if time.time() - started < RATE_LIMIT_PATIENCE:
                        continue  # the gate holds every request until the server is ready
                    err = ProviderError(
                        f"rate limited for {RATE_LIMIT_PATIENCE:.0f} s", retryable=False
                    )
                if not self._retry_after_failure(job, attempt, err):
                    return
                slot.release()  # a request waiting to be retried holds no slot
                await asyncio.sleep(backoff_delay(attempt, err.retry_after))
                await slot.take()
                attempt += 1
                if self.stopping.is_set():
                    return
                continue
            self.gate.observe(result.headers)
            self._rate_limit_streak = 0
            self.tally.note = ""
            answer = Answer(
                text=result.text,
                finish_reason=result.finish_reason,
                prompt_tokens=result.usage.prompt_tokens,
                completion_tokens=result.usage.completion_tokens,
                model=result.model,
                provider=self.provider.name,
                latency_s=time.monotonic() - sent,
                attempts=attempt,
                started_at=started,
                finished_at=time.time(),
            )
            self.limit.on_answer(answer.latency_s or 0.0, load)
            await self.writer.save(job.prompt_id, job.key, answer)
            self.tally.count(answer)
            self.on_answer(self.tally, job.prompt_id, answer)
            self._unanswered_streak = 0
            return

    def _rate_limited(self, err: ProviderError) -> bool:
        """A 429 says "not now", not "this request is bad": it costs no attempt. Every request
        waits at the gate for the server's retry-after or a pause that doubles with each round
        of 429s (answers to requests sent after the last pause), and the limit shrinks once
        they keep coming, so a server that answers 429 for a minute sees a few probes."""
        if err.status != 429:
            return False
        self.gate.observe(err.headers)
        self.tally.rate_limited += 1
        self.tally.retries += 1
        now = time.monotonic()
        if now >= self._rate_limit_round_ends:
            self._rate_limit_streak += 1
        pause = max(err.retry_after or 0.0, min(60.0, 0.5 * 2 ** (self._rate_limit_streak - 1)))
        self.gate.pause(pause)
        self._rate_limit_round_ends = max(self._rate_limit_round_ends, now + pause)
        self.limit.on_overload(rate_limited=self._rate_limit_streak < RATE_LIMIT_STREAK)
        self.tally.note = f"rate limited: waiting {pause:.0f} s" if pause >= 1 else ""
        return True

    def _retry_after_failure(self, job: Job, attempt: int, err: ProviderError) -> bool:
        """Record what a failure says about the server; True when the request should be sent
        again, False when it failed (recorded in the store with the error)."""
        self.gate.observe(err.headers)
        if err.status is None or err.status >= 500:
            self.limit.on_overload(rate_limited=False)
        if not err.retryable or attempt >= self.max_attempts:
            self.store.save_failure(job.prompt_id, attempt, str(err))
            self.tally.failed += 1
            self._count_outage(err)
            return False
        self.tally.retries += 1
        self.tally.note = f"retrying: {str(err)[:80]}"
        return True

    def _show(self) -> None:
        self.tally.in_flight = self.limit.in_flight
        self.tally.limit = int(self.limit.current())

    def _count_outage(self, err: ProviderError) -> None:
        if err.status is not None:
            return  # the server answered: not an outage
        self._unanswered_streak += 1
        if self._unanswered_streak >= OUTAGE_STREAK and not self.outage:
            self.outage = (
                f"the provider did not answer {OUTAGE_STREAK} prompts in a row after "
                f"{self.max_attempts} attempts each (last: {err}); stopped, nothing is lost: "
                "run the same command again to resume"
            )
            self.stop()


class _Slot:
    """One request's place among those in flight: taken by `OnlineEngine.run` before the
    request's task starts, given up while it waits to be retried, given back at its end."""

    def __init__(self, limit: AdaptiveLimit) -> None:
        self.limit = limit
        self.held = True

    async def take(self) -> None:
        await self.limit.acquire()
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.limit.release()
