"""Requests to LLMs through factory's engine: limits, retries, the cache and resume.

The judge and API-model sampling both send (id, messages) items and read answers back
from a run store in the evaluation folder, so running the same evaluation again sends
nothing that was already answered.
"""

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

from factory.prompts import Message
from factory.providers import make_provider
from factory.providers.base import GenerationParams
from factory.ratelimit import RateGate
from factory.runner import Job, Runner, request_key
from factory.store import RunStore


@dataclass(frozen=True)
class Endpoint:
    """Where requests go: a provider, its model, and the limits to respect."""

    provider: str
    model: str
    base_url: str | None = None
    api_key: str | None = None
    rpm: int | None = None
    concurrency: int = 16
    max_attempts: int = 6
    timeout: float = 120.0


@dataclass(frozen=True)
class Reply:
    text: str | None  # None when the request failed
    error: str
    finish_reason: str | None = None


def ask(
    endpoint: Endpoint,
    store_path: Path,
    items: list[tuple[str, list[Message]]],
    params: GenerationParams,
) -> dict[str, Reply]:
    """Answers to every (id, messages) item; already-answered items cost nothing."""
    store = RunStore(store_path)
    try:
        keys = {item_id: request_key(endpoint.provider, msgs, params) for item_id, msgs in items}
        store.add_prompts(
            (item_id, index, {}, [m.model_dump() for m in msgs], keys[item_id])
            for index, (item_id, msgs) in enumerate(items)
        )
        pending = store.unfinished([item_id for item_id, _ in items])
        if pending:
            provider = make_provider(
                endpoint.provider,
                model=endpoint.model,
                api_key=endpoint.api_key,
                base_url=endpoint.base_url,
                timeout=endpoint.timeout,
            )
            jobs = [
                Job(pid, [Message.model_validate(m) for m in json.loads(msgs)], key)
                for pid, _, msgs, key in pending
            ]
            runner = Runner(
                provider,
                store,
                params,
                RateGate(endpoint.rpm, None),
                endpoint.concurrency,
                endpoint.max_attempts,
            )

            async def run() -> None:
                try:
                    await runner.run(jobs)
                finally:
                    await provider.close()

            asyncio.run(run())
        return _replies(store, [item_id for item_id, _ in items])
    finally:
        store.close()


def _replies(store: RunStore, ids: list[str]) -> dict[str, Reply]:
    rows = store.db.execute(
        "SELECT p.id, r.text, r.finish_reason, p.last_error FROM prompts p"
        " LEFT JOIN responses r ON r.prompt_id = p.id"
    ).fetchall()
    by_id = {pid: Reply(text, error or "", finish) for pid, text, finish, error in rows}
    return {item_id: by_id.get(item_id, Reply(None, "not sent")) for item_id in ids}
