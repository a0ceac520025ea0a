"""Client-side limits: OpenAI's reset durations, backoff, and the shared pause."""

import asyncio
import contextlib
import time

import pytest

from factory.ratelimit import RateGate, backoff_delay, parse_reset


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("120ms", 0.12),
        ("1h2m3.5s", 3723.5),
        ("2m", 120.0),
        ("0s", 0.0),
    ],
)
def test_reset_durations_as_openai_writes_them(text, seconds):
    assert parse_reset(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "5 minutes"])
def test_unreadable_reset_is_ignored(text):
    assert parse_reset(text) is None


def test_backoff_grows_and_is_capped():
    firsts = [backoff_delay(1, None) for _ in range(200)]
    fifths = [backoff_delay(5, None) for _ in range(200)]
    assert all(0.5 <= d <= 1.0 for d in firsts)
    assert all(8.0 <= d <= 16.0 for d in fifths)
    assert all(d <= 60.0 for d in (backoff_delay(20, None) for _ in range(50)))
    assert len(set(firsts)) > 150  # jittered, so retries of many workers spread out


def test_retry_after_is_a_floor():
    assert all(backoff_delay(1, 7.0) >= 7.0 for _ in range(100))


def test_requests_per_minute_are_spread_not_burst():
    # 600/minute is 10 per second: a full bucket of 2.5, then 10 more over the second. A
    # per-minute bucket would let all 600 out at once and meet a wall of 429s.
    sent = asyncio.run(_count_within(RateGate(rpm=600, tpm=None), 1.0))
    assert 10 <= sent <= 14


def test_an_exhausted_window_pauses_every_worker_for_one_requests_share():
    gate = RateGate(rpm=None, tpm=None)
    # 120 a minute is one request per 0.5 s; the window refills fully in 10 s.
    gate.observe(
        {
            "x-ratelimit-limit-requests": "120",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "10s",
        }
    )
    started = time.monotonic()
    asyncio.run(gate.wait(1))
    assert 0.45 <= time.monotonic() - started < 1.0


def test_remaining_requests_mean_no_pause():
    gate = RateGate(rpm=None, tpm=None)
    gate.observe(
        {
            "x-ratelimit-limit-requests": "120",
            "x-ratelimit-remaining-requests": "5",
            "x-ratelimit-reset-requests": "10s",
        }
    )
    started = time.monotonic()
    asyncio.run(gate.wait(1))
    assert time.monotonic() - started < 0.1


def test_too_few_remaining_tokens_for_the_next_request_pause():
    gate = RateGate(rpm=None, tpm=None)
    asyncio.run(gate.wait(600))  # the requests are about 600 tokens each
    gate.observe(
        {
            "x-ratelimit-limit-tokens": "60000",  # 1,000 tokens a second
            "x-ratelimit-remaining-tokens": "100",
            "x-ratelimit-reset-tokens": "59s",
        }
    )
    started = time.monotonic()
    asyncio.run(gate.wait(600))
    assert 0.55 <= time.monotonic() - started < 1.0


async def _count_within(gate: RateGate, seconds: float) -> int:
    """How many requests the gate lets through in `seconds`."""
    sent = 0

    async def keep_sending() -> None:
        nonlocal sent
        while True:
            await gate.wait(1)
            sent += 1

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(keep_sending(), timeout=seconds)
    return sent
