"""The OpenAI stand-in speaks the protocol the official client expects, over real HTTP."""

import asyncio
import json
from collections.abc import Awaitable, Callable

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from openai.types import Batch
from openai_server import BatchOutcome, FakeOpenAI, ServerConfig, prompt_key

KEY = "sk-test"
STORY_PROMPT = (
    'Write a short story (3 to 5 paragraphs) in English.\n\nThe story must use the verb "jump", '
    'the noun "kite" and the adjective "shiny".\n\n'
    'Answer with exactly this JSON and nothing else: {"story": "<the story>"}'
)


def messages(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You write stories."}, {"role": "user", "content": text}]


def drive(config: ServerConfig, scenario: Callable[[AsyncOpenAI, FakeOpenAI], Awaitable[None]]):
    """Run `scenario` against a fresh server with a client that never retries."""
    with FakeOpenAI(config) as server:

        async def run() -> None:
            client = AsyncOpenAI(base_url=server.base_url, api_key=KEY, max_retries=0, timeout=5)
            async with client:
                await scenario(client, server)

        asyncio.run(run())


async def wait_for_end(client: AsyncOpenAI, batch_id: str) -> Batch:
    for _ in range(200):
        batch = await client.batches.retrieve(batch_id)
        if batch.status in ("completed", "expired", "failed", "cancelled"):
            return batch
        await asyncio.sleep(0.02)
    raise AssertionError(f"batch {batch_id} did not end")


async def upload(client: AsyncOpenAI, custom_ids: list[str]) -> str:
    lines = [
        {
            "custom_id": custom_id,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": messages(f"{STORY_PROMPT} {custom_id}")},
        }
        for custom_id in custom_ids
    ]
    jsonl = "".join(json.dumps(line) + "\n" for line in lines).encode()
    file = await client.files.create(file=("input.jsonl", jsonl), purpose="batch")
    assert (await client.files.retrieve(file.id)).bytes == len(jsonl)
    return file.id


async def jsonl(client: AsyncOpenAI, file_id: str | None) -> list[dict]:
    assert file_id is not None
    content = await client.files.content(file_id)
    return [json.loads(line) for line in content.text.splitlines()]


def test_completion_round_trip_and_authentication():
    async def scenario(client: AsyncOpenAI, server: FakeOpenAI) -> None:
        completion = await client.chat.completions.create(
            model="gpt-4o-mini", messages=messages(STORY_PROMPT)
        )
        assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
        assert completion.model == "gpt-4o-mini"
        choice = completion.choices[0]
        assert choice.finish_reason == "stop" and choice.message.role == "assistant"
        story = json.loads(choice.message.content or "")["story"]
        assert all(word in story for word in ("jump", "kite", "shiny"))
        usage = completion.usage
        assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 20
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

        short = await client.chat.completions.create(
            model="gpt-4o-mini", messages=messages(STORY_PROMPT), max_tokens=5
        )
        assert short.choices[0].finish_reason == "length"
        assert short.usage is not None and short.usage.completion_tokens == 5

        stranger = AsyncOpenAI(base_url=server.base_url, api_key="sk-wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as caught:
            await stranger.chat.completions.create(model="m", messages=messages("hi"))
        assert caught.value.code == "invalid_api_key"
        await stranger.close()

        stats = server.stats
        assert stats.completions == 2 and stats.by_status == {200: 2, 401: 1}
        assert stats.served_prompts == {prompt_key(messages(STORY_PROMPT)): 2}

    drive(ServerConfig(api_key=KEY), scenario)


def test_over_the_rpm_limit_answers_429_with_rate_limit_headers():
    async def scenario(client: AsyncOpenAI, server: FakeOpenAI) -> None:
        create = client.chat.completions.with_raw_response.create
        for remaining in ("1", "0"):
            raw = await create(model="gpt-4o-mini", messages=messages("hello"))
            assert raw.headers["x-ratelimit-limit-requests"] == "2"
            assert raw.headers["x-ratelimit-remaining-requests"] == remaining
            assert raw.headers["x-ratelimit-limit-tokens"] == "1000"
            assert raw.parse().choices[0].message.content == "hello"
        with pytest.raises(openai.RateLimitError) as caught:
            await create(model="gpt-4o-mini", messages=messages("hello"))
        error = caught.value
        assert error.code == "rate_limit_exceeded" and error.type == "requests"
        headers = error.response.headers
        assert 25_000 <= int(headers["retry-after-ms"]) <= 30_000  # 2 per minute: one per 30 s
        assert int(headers["retry-after"]) == 30
        assert headers["x-ratelimit-remaining-requests"] == "0"
        assert headers["x-ratelimit-reset-requests"].endswith("s")
        assert server.stats.rate_limited == 1 and server.stats.by_status[429] == 1

    drive(ServerConfig(api_key=KEY, rpm=2, tpm=1000), scenario)


def test_injected_faults():
    script = {1: "drop", 2: "truncated", 3: "malformed", 4: "length"}

    async def scenario(client: AsyncOpenAI, server: FakeOpenAI) -> None:
        async def ask() -> openai.types.chat.ChatCompletion:
            return await client.chat.completions.create(model="m", messages=messages(STORY_PROMPT))

        with pytest.raises(openai.InternalServerError) as caught:
            await ask()
        assert caught.value.status_code == 500 and caught.value.type == "server_error"
        for _ in ("drop", "truncated"):
            with pytest.raises(openai.APIConnectionError):
                await ask()
        with pytest.raises(ValueError):  # a 200 whose body is not JSON
            await ask()
        cut = await ask()
        assert cut.choices[0].finish_reason == "length"
        assert (await ask()).choices[0].finish_reason == "stop"
        # The server counts an answer once its write has drained, which can land a moment
        # after the client has read it.
        for _ in range(200):
            if server.stats.completions >= 2:
                break
            await asyncio.sleep(0.01)
        stats = server.stats
        assert stats.faults == {"500": 1, "drop": 1, "truncated": 1, "malformed": 1, "length": 1}
        assert stats.completions == 2 and stats.chat_requests == 6

    drive(
        ServerConfig(api_key=KEY, fail_first_n=1, fault=lambda index, body: script.get(index)),
        scenario,
    )


def test_batch_completes_with_failed_lines_and_lists_with_pagination():
    async def scenario(client: AsyncOpenAI, server: FakeOpenAI) -> None:
        file_id = await upload(client, ["a", "b", "c"])
        created = await client.batches.create(
            input_file_id=file_id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"run": "test"},
        )
        assert created.status == "validating" and created.id.startswith("batch_")
        batch = await wait_for_end(client, created.id)
        assert batch.status == "completed" and batch.metadata == {"run": "test"}
        assert batch.in_progress_at and batch.finalizing_at and batch.completed_at
        counts = batch.request_counts
        assert counts is not None and (counts.total, counts.completed, counts.failed) == (3, 2, 1)
        outputs = await jsonl(client, batch.output_file_id)
        assert [line["custom_id"] for line in outputs] == ["a", "c"]
        assert outputs[0]["response"]["status_code"] == 200
        assert outputs[0]["response"]["body"]["object"] == "chat.completion"
        (failure,) = await jsonl(client, batch.error_file_id)
        assert failure["custom_id"] == "b" and failure["response"]["status_code"] == 500

        second = await client.batches.create(
            input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        page = await client.batches.list(limit=1)
        assert [b.id for b in page.data] == [second.id] and page.has_more
        page = await client.batches.list(limit=1, after=second.id)
        assert [b.id for b in page.data] == [created.id] and not page.has_more
        await wait_for_end(client, second.id)
        assert server.stats.served_custom_ids == {"a": 2, "c": 2}

    drive(ServerConfig(api_key=KEY, batch_seconds=0.2, batch_fail_ids={"b"}), scenario)


def test_batch_expires_with_partial_output_and_cancels():
    async def scenario(client: AsyncOpenAI, server: FakeOpenAI) -> None:
        file_id = await upload(client, ["a", "b", "c"])
        with pytest.raises(openai.InternalServerError):  # the first creation is refused
            await client.batches.create(
                input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
            )
        expiring = await client.batches.create(
            input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        batch = await wait_for_end(client, expiring.id)
        assert batch.status == "expired" and batch.expired_at and not batch.completed_at
        assert [line["custom_id"] for line in await jsonl(client, batch.output_file_id)] == ["a"]
        expired = await jsonl(client, batch.error_file_id)
        assert [(line["custom_id"], line["error"]["code"]) for line in expired] == [
            ("b", "batch_expired"),
            ("c", "batch_expired"),
        ]

        cancelling = await client.batches.create(
            input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        assert (await client.batches.cancel(cancelling.id)).status == "cancelling"
        batch = await wait_for_end(client, cancelling.id)
        assert batch.status == "cancelled" and batch.cancelled_at
        assert server.stats.batches_created == 2

    drive(
        ServerConfig(
            api_key=KEY,
            batch_seconds=0.2,
            batch_create_error=lambda call: 500 if call == 0 else None,
            batch_outcome=lambda index: BatchOutcome("expired", answered=1),
        ),
        scenario,
    )


def test_concurrent_requests_overlap_and_stats_are_served_over_http():
    async def scenario(client: AsyncOpenAI, server: FakeOpenAI) -> None:
        await asyncio.gather(
            *(
                client.chat.completions.create(model="m", messages=messages(f"prompt {i}"))
                for i in range(200)
            )
        )
        # 200 answers of 0.3 s each, side by side: many in flight at once.
        stats = httpx.get(server.base_url.removesuffix("/v1") + "/stats").json()
        assert stats["completions"] == 200 and stats["peak_in_flight"] > 50
        assert len(stats["served_prompts"]) == 200
        assert stats["by_route"]["POST /v1/chat/completions"] == 200

    drive(ServerConfig(api_key=KEY, latency=0.3), scenario)
