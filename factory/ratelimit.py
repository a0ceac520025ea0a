"""Client-side rate limits: requests and tokens per minute, plus what the server tells us.

aiolimiter's leaky bucket allows a burst as large as its capacity, so the per-minute
limits are spread over buckets of about a quarter second: 1,200 requests/minute becomes 5
per 0.25 s rather than 1,200 at once, which a server's own limiter would answer with 429s.
"""

import asyncio
import random
import re
import time

from aiolimiter import AsyncLimiter

_DURATION = re.compile(
    r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$"
)


def parse_reset(value: str) -> float | None:
    """OpenAI's reset durations ("1s", "6m0s", "120ms", "1h2m3.5s") in seconds."""
    match = _DURATION.match(value.strip())
    if not match or not any(match.groups()):
        return None
    h, m, s, ms = (float(g) if g else 0.0 for g in match.groups())
    return h * 3600 + m * 60 + s + ms / 1000


def per_second_limiter(per_minute: int) -> AsyncLimiter:
    """A bucket of about a quarter second's requests: a server that enforces its limit per
    second (as OpenAI may) then never sees a burst larger than its bucket refills."""
    capacity = max(1.0, per_minute / 240)
    return AsyncLimiter(capacity, capacity * 60 / per_minute)


def backoff_delay(
    attempt: int, retry_after: float | None, base: float = 1.0, cap: float = 60.0
) -> float:
    """Exponential backoff with jitter; a server's retry-after is a floor, not a suggestion."""
    exp = min(cap, base * 2 ** (attempt - 1))
    delay = exp / 2 + random.uniform(0, exp / 2)
    if retry_after is not None:
        delay = max(delay, retry_after + random.uniform(0, 0.25))
    return delay


class RateGate:
    """Every request waits here before it is sent.

    Holds the requests-per-minute and tokens-per-minute buckets, and a shared pause that
    a 429's retry-after or an exhausted `x-ratelimit-remaining-*` header sets, so that
    one request's warning slows every request down instead of each finding out by a 429.
    Without `--rpm`, the server's own `x-ratelimit-limit-requests` becomes the limit once
    an answer carries it (and a lower one than `--rpm` wins).
    """

    def __init__(self, rpm: int | None, tpm: int | None) -> None:
        self.rpm = rpm
        self.requests = per_second_limiter(rpm) if rpm else None
        self.tpm = tpm
        self.tokens = AsyncLimiter(tpm, 60) if tpm else None
        self.paused_until = 0.0
        self.last_estimate = 1  # tokens of the latest request, for the tokens header

    async def wait(self, tokens: int) -> None:
        self.last_estimate = tokens
        while (pause := self.paused_until - time.monotonic()) > 0:
            await asyncio.sleep(pause)
        if self.requests:
            await self.requests.acquire()
        if self.tokens and self.tpm:
            await self.tokens.acquire(min(tokens, self.tpm))

    def rate(self) -> float | None:
        """Requests per second allowed now, or None when no limit is known."""
        return self.rpm / 60 if self.rpm else None

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)

    def observe(self, headers: dict[str, str]) -> None:
        """Hold everyone back when the server says its window is used up.

        `x-ratelimit-reset-*` is the time until the whole window refills; waiting that
        long would idle for most of it. Only one request's (or one estimate's worth of
        tokens') share of the per-minute limit is waited for, and the next answer's
        headers say whether that was enough.
        """
        for kind, amount in (("requests", 1), ("tokens", self.last_estimate)):
            try:
                remaining = int(headers[f"x-ratelimit-remaining-{kind}"])
                limit = int(headers[f"x-ratelimit-limit-{kind}"])
            except (KeyError, ValueError):
                continue
            if kind == "requests" and limit > 0 and (self.rpm is None or limit < self.rpm):
                self.rpm = limit
                self.requests = per_second_limiter(limit)
            reset = parse_reset(headers.get(f"x-ratelimit-reset-{kind}", ""))
            if reset is not None and limit > 0 and remaining < amount:
                self.pause(min(reset, 60 * amount / limit))
