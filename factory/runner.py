"""The async engine: send each pending prompt once, under limits, with bounded retries.

Every prompt ends in the store as done (its answer committed) or failed (with its last
error); an interrupted run leaves the rest pending for the next invocation.
"""

import asyncio
import hashlib
import json
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from factory.errors import KahaniError
from factory.pricing import count_chat_tokens
from factory.prompts import Message
from factory.providers.base import ChatRequest, GenerationParams, Provider, ProviderError
from factory.ratelimit import RateGate, backoff_delay
from factory.store import Answer, RunStore

# After Ctrl-C, in-flight requests get this long to finish (their answers are paid for).
GRACE_SECONDS = 10.0
# This many prompts in a row failing every attempt without any answer from the server
# (connection refused, timeouts) is an outage: stop, rather than burn through every prompt.
OUTAGE_STREAK = 3


def request_key(provider: str, messages: list[Message], params: GenerationParams) -> str:
    """The cache key: the same request to the same provider is never sent twice."""
    family = "openai" if provider.startswith("openai") else provider
    payload = [family, [m.model_dump() for m in messages], params.model_dump()]
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
    started: float = field(default_factory=time.monotonic)


class Runner:
    def __init__(
        self,
        provider: Provider,
        store: RunStore,
        params: GenerationParams,
        gate: RateGate,
        concurrency: int,
        max_attempts: int,
        on_update: Callable[[Tally], None] = lambda tally: None,
        on_answer: Callable[[Tally, str, Answer], None] = lambda tally, prompt_id, answer: None,
    ) -> None:
        self.on_answer = on_answer
        self.provider = provider
        self.store = store
        self.params = params
        self.gate = gate
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.on_update = on_update
        self.stopping = asyncio.Event()
        self.outage: str | None = None
        self._unanswered_streak = 0

    async def run(self, jobs: list[Job]) -> Tally:
        tally = Tally(total=len(jobs))
        queue: asyncio.Queue[Job] = asyncio.Queue()
        for job in jobs:
            cached = self.store.cached(job.key)
            if cached:
                self.store.save_answer(job.prompt_id, job.key, cached)
                self.on_answer(tally, job.prompt_id, cached)
                tally.cached += 1
            else:
                queue.put_nowait(job)
        self.on_update(tally)

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        workers = [asyncio.create_task(self._worker(queue, tally)) for _ in range(self.concurrency)]
        stop = asyncio.create_task(self.stopping.wait())
        try:
            all_done = asyncio.gather(*workers)
            await asyncio.wait([all_done, stop], return_when=asyncio.FIRST_COMPLETED)
            if self.stopping.is_set():
                # Workers take no new job now; give the ones in flight a moment to land.
                await asyncio.wait(workers, timeout=GRACE_SECONDS)
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            for worker in workers:
                if not worker.cancelled() and worker.exception():
                    raise worker.exception()
            if self.outage:
                raise KahaniError(self.outage)
        finally:
            stop.cancel()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        return tally

    async def _worker(self, queue: asyncio.Queue[Job], tally: Tally) -> None:
        while not self.stopping.is_set():
            try:
                job = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await self._send(job, tally)
            self.on_update(tally)

    async def _send(self, job: Job, tally: Tally) -> None:
        # Counting tokens costs CPU per request; only a tokens-per-minute limit needs it.
        estimate = 0
        if self.gate.tokens:
            estimate = count_chat_tokens(job.messages) + (self.params.max_tokens or 0)
        request = ChatRequest(custom_id=job.prompt_id, messages=job.messages, params=self.params)
        started = time.time()
        for attempt in range(1, self.max_attempts + 1):
            await self.gate.wait(estimate)
            sent = time.monotonic()
            try:
                result = await self.provider.complete(request)
            except ProviderError as err:
                self.gate.observe(err.headers)
                if err.status == 429:
                    tally.rate_limited += 1
                    if err.retry_after:
                        self.gate.pause(err.retry_after)
                if not err.retryable or attempt == self.max_attempts:
                    self.store.save_failure(job.prompt_id, attempt, str(err))
                    tally.failed += 1
                    self._count_outage(err)
                    return
                if self.stopping.is_set():
                    return  # left pending: the next invocation tries again
                tally.retries += 1
                await asyncio.sleep(backoff_delay(attempt, err.retry_after))
                continue
            self.gate.observe(result.headers)
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
            self.store.save_answer(job.prompt_id, job.key, answer)
            self.on_answer(tally, job.prompt_id, answer)
            self._unanswered_streak = 0
            tally.done += 1
            tally.prompt_tokens += answer.prompt_tokens
            tally.completion_tokens += answer.completion_tokens
            return

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
            self.stopping.set()
