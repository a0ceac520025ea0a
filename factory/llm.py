"""The one way kahani talks to LLMs: `factory generate`, `judge score` (sampling API models
and judging) and every later caller go through `answer` (or `ask`, its item-by-item form).

Given an endpoint (provider, model, base URL, key, limits) and requests, `answer` registers
the requests in a run store, reuses any answer already paid for with the identical request,
and sends the rest through an engine: `OnlineEngine` (requests over HTTP or to a local model,
as many in flight as the server sustains) or `BatchEngine` (the Batch API, half price). Both
commit each answer the moment it arrives, so an interrupted call resumes where it stopped
and never pays twice.

Keys go only where they were given: a key passed with an endpoint goes to that endpoint's
base URL; `$OPENAI_API_KEY` goes only to OpenAI's API or to `$OPENAI_BASE_URL`, never to
another server named by `--base-url`.
"""

import asyncio
import os
import signal
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import Field, SecretStr

from factory.engine import AnswerHook, Engine, Job, OnlineEngine, Tally, request_key
from factory.errors import Interrupted, KahaniError
from factory.progress import Progress
from factory.prompts import Message
from factory.providers import make_provider, require_access
from factory.providers.base import GenerationParams
from factory.ratelimit import RateGate
from factory.settings import LLMLimits, ProviderName
from factory.store import Reply, RunStore

if TYPE_CHECKING:
    from factory.streaming import Streamer

OPENAI_URL = "https://api.openai.com/v1"
REGISTER_CHUNK = 10_000  # prompts registered per transaction


class Endpoint(LLMLimits):
    """Where requests go and how hard they may be pushed: one per model a command talks to."""

    provider: ProviderName
    model: str
    base_url: str | None = None
    api_key: SecretStr | None = Field(None, exclude=True, repr=False)  # never written anywhere


@dataclass(frozen=True)
class Request:
    """One chat request: an id unique within its store, the messages, and for generated
    prompts their position and the words they were made from."""

    id: str
    messages: list[Message]
    index: int = 0
    variables: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    tally: Tally
    interrupted: bool  # stopped by Ctrl-C or SIGTERM; the rest is pending


def api_key_for(
    base_url: str | None, given: str | None, environ: Mapping[str, str] = os.environ
) -> str | None:
    """The key an endpoint may use: the one given with it, else `$OPENAI_API_KEY` when the
    endpoint is OpenAI's API (or `$OPENAI_BASE_URL`, which that key was set up for)."""
    if given:
        return given
    key = environ.get("OPENAI_API_KEY")
    if not key:
        return None
    home = environ.get("OPENAI_BASE_URL") or OPENAI_URL
    return key if base_url is None or _same_server(base_url, home) else None


def _same_server(a: str, b: str) -> bool:
    one, two = urlsplit(a.rstrip("/")), urlsplit(b.rstrip("/"))
    return (one.scheme, one.netloc.lower(), one.path) == (two.scheme, two.netloc.lower(), two.path)


def check_endpoint(endpoint: Endpoint) -> None:
    """Fail now, before anything is written, when the endpoint cannot be used (no key, no
    such local model)."""
    key = endpoint.api_key.get_secret_value() if endpoint.api_key else None
    require_access(endpoint.provider, endpoint.model, key, endpoint.base_url)


def answer(
    endpoint: Endpoint,
    store: RunStore,
    requests: Iterable[Request],
    params: GenerationParams,
    *,
    label: str,
    on_answer: AnswerHook | None = None,
    before_sending: Callable[[list[str]], None] | None = None,
    tag: str | None = None,
) -> Outcome:
    """Answer every request through `store`: cached answers are reused, the rest are sent.

    `before_sending(ids)` runs once the requests are registered and before any is sent
    (generate uses it to re-queue rejected answers); `on_answer` sees every answer as it
    is committed, cached ones included; `tag` marks this store's batches at the provider
    (default: the store's own id)."""
    hook = on_answer or (lambda tally, prompt_id, answer: None)
    check_endpoint(endpoint)
    wanted = _register(store, endpoint.provider, requests, params)
    if before_sending:
        before_sending(wanted)
    pending = store.unfinished(wanted)
    tally = Tally(total=len(pending))
    jobs = []
    for record in pending:
        cached = store.cached(record.request_key)
        if cached is not None:  # the same request was answered for another id: free
            store.save_answer(record.id, record.request_key, cached)
            tally.cached += 1
            hook(tally, record.id, cached)
            continue
        messages = [Message.model_validate(m) for m in record.messages]
        jobs.append(Job(record.id, messages, record.request_key))
    if not jobs:
        return Outcome(tally, interrupted=False)
    interrupted = asyncio.run(_run(endpoint, store, params, jobs, tally, hook, label, tag))
    return Outcome(tally, interrupted)


def ask(
    endpoint: Endpoint,
    store_path: Path,
    items: list[tuple[str, list[Message]]],
    params: GenerationParams,
    label: str = "asking",
) -> dict[str, Reply]:
    """Answers to (id, messages) items, kept in the store at `store_path`; an item answered
    by an earlier call costs nothing. Raises Interrupted (exit code 130) on Ctrl-C."""
    store = RunStore.open(store_path, create=True)
    try:
        requests = [Request(item_id, msgs, i) for i, (item_id, msgs) in enumerate(items)]
        outcome = answer(endpoint, store, requests, params, label=label)
        if outcome.interrupted:
            raise Interrupted("every answer so far is kept: run the same command to resume")
        return store.replies([item_id for item_id, _ in items])
    finally:
        store.close()


def streamer(endpoint: Endpoint, name: str) -> "Streamer":
    """Answers piece by piece as they are written, for people watching (`judge play`); nothing
    is stored. A local model is loaded now; API models stream through the openai client."""
    from factory.streaming import LocalStreamer, OpenAIStreamer

    check_endpoint(endpoint)
    key = endpoint.api_key.get_secret_value() if endpoint.api_key else None
    if endpoint.provider == "local":
        from factory.providers.local import resolve_local_model

        return LocalStreamer(name, resolve_local_model(endpoint.model))
    if endpoint.provider == "openai":
        return OpenAIStreamer(name, endpoint.model, endpoint.base_url, key, endpoint.timeout)
    raise KahaniError(
        f"{endpoint.provider}:{endpoint.model} cannot stream; use a local model or openai:MODEL"
    )


def _register(
    store: RunStore, provider: str, requests: Iterable[Request], params: GenerationParams
) -> list[str]:
    known = store.known_ids()
    wanted: list[str] = []
    chunk: list[tuple[str, int, dict, list[dict], str]] = []
    for r in requests:
        wanted.append(r.id)
        if r.id not in known:
            key = request_key(provider, r.messages, params)
            chunk.append((r.id, r.index, r.variables, [m.model_dump() for m in r.messages], key))
        if len(chunk) >= REGISTER_CHUNK:
            store.add_prompts(chunk)
            chunk = []
    store.add_prompts(chunk)
    return wanted


async def _run(
    endpoint: Endpoint,
    store: RunStore,
    params: GenerationParams,
    jobs: list[Job],
    tally: Tally,
    on_answer: AnswerHook,
    label: str,
    tag: str | None,
) -> bool:
    """Run the jobs under a progress display; True when stopped by a signal."""
    engine = _make_engine(endpoint, store, params, tally, on_answer, tag)
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()

    def on_signal() -> None:
        if stopped.is_set():
            # A second Ctrl-C: leave at once. Every answer is committed as it arrives and
            # SQLite's journal makes a cut-off write vanish whole, as after SIGKILL.
            sys.stderr.write("\nstopped at once; every answer committed so far is kept\n")
            os._exit(130)
        stopped.set()
        engine.stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        async with Progress(label, tally):
            await engine.run(jobs)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await engine.close()
    return stopped.is_set()


def _make_engine(
    endpoint: Endpoint,
    store: RunStore,
    params: GenerationParams,
    tally: Tally,
    on_answer: AnswerHook,
    tag: str | None,
) -> Engine:
    key = endpoint.api_key.get_secret_value() if endpoint.api_key else None
    if endpoint.provider == "openai-batch":
        import openai

        from factory.batch import BatchEngine

        require_access(endpoint.provider, endpoint.model, key, endpoint.base_url)
        # The client's own retries cover the few file and batch calls; answers come in files.
        client = openai.AsyncOpenAI(
            api_key=key or "not-needed",
            base_url=endpoint.base_url,
            timeout=endpoint.timeout,
            max_retries=5,
        )
        return BatchEngine(
            client,
            store,
            params,
            tag or store.tag(),
            endpoint.batch_poll_seconds,
            endpoint.max_attempts,
            tally,
            on_answer,
        )
    provider = make_provider(endpoint.provider, endpoint.model, key, endpoint.base_url, endpoint)
    return OnlineEngine(
        provider,
        store,
        params,
        RateGate(endpoint.rpm, endpoint.tpm),
        endpoint.max_concurrency,
        endpoint.max_attempts,
        tally,
        on_answer,
    )
