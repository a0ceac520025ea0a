"""How many requests to keep in flight: found as the run goes, not a constant.

By Little's law, a rate of R requests/s at L seconds per answer needs R * L requests in
flight: 1,200/minute at 6 s needs 120, at 10 s 200, and a fixed 32 would use a quarter of
a limit the user pays for. So the limit here moves:

- It grows while it is what holds the engine back: by one per answer below the slow-start
  threshold (doubling each round trip), then by about 5% per round trip.
- It is halved (at most once per round trip) when the server pushes back: 5xx answers,
  timeouts, dropped connections, and 429s when no rate is known or they keep coming.
- When the rate is known (`--rpm`, or the server's `x-ratelimit-limit-requests`), the rate
  gate paces the requests and the limit only caps them at what Little's law needs, with
  headroom: a hosted API's latency is its own business, not a sign of our load.
- When no rate is known, the limit also follows latency, which is all a self-hosted server
  (vLLM, Ollama, llama.cpp) says when overloaded: it never answers 429, it just gets slower.
  Answers are taken in windows. The baseline is the median latency of the first answers,
  sent at the lightest load, with that load; a later window at no more load resets it (the
  server got faster or slower by itself: a longer answer, other users). Two windows in a
  row whose median is above TOLERANCE times the baseline at a higher load mean queueing:
  each answer in the window estimates the load the server takes at that tolerance (the load
  it was sent at, scaled by how much too slow it was), and the limit comes down to their
  median. A server whose latency grows with more than K requests in flight thus settles
  near TOLERANCE * K: all of its capacity, at a bounded latency cost.
"""

import asyncio
import math
import statistics
import time
from collections import deque
from collections.abc import Callable

TOLERANCE = 1.3  # window median latency this far above the baseline means queueing
SLOW_START = 4  # requests in flight before anything is known about the server
MIN_LIMIT = 2.0
HEADROOM = 1.5  # Little's law cap: rate * mean latency * HEADROOM + SPARE
SPARE = 8
GROWTH = 0.05  # growth per round trip past the slow-start threshold
EWMA = 0.05  # weight of each answer in the mean latency


class AdaptiveLimit:
    """The number of requests allowed in flight. `acquire()` before sending, `release()` after;
    `on_answer` and `on_overload` tell it what the server did."""

    def __init__(
        self,
        maximum: int,
        rate: Callable[[], float | None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.maximum = float(maximum)
        self.rate = rate  # requests per second the rate gate allows now, None when unknown
        self.clock = clock
        # With a known rate the gate paces from the first request; otherwise start small.
        self.limit = self.maximum if rate() else min(float(SLOW_START), self.maximum)
        self.ssthresh = self.maximum
        self.in_flight = 0
        self.mean_latency: float | None = None
        self.baseline: float | None = None  # median latency at the lightest load...
        self.baseline_load = 0.0  # ...and that load (mean requests in flight when sent)
        self._window: list[tuple[float, int]] = []  # (latency, requests in flight when sent)
        self._cut_at = -math.inf
        self._slow_windows = 0  # windows in a row above the tolerance
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.closed = False

    def current(self) -> float:
        """The limit in force: the congestion limit, capped by what the rate needs."""
        limit = self.limit
        rate = self.rate()
        if rate and self.mean_latency is not None:
            limit = min(limit, rate * self.mean_latency * HEADROOM + SPARE)
        return min(max(MIN_LIMIT, limit), self.maximum)

    async def acquire(self) -> None:
        """Wait for a free slot (returns at once after `close()`)."""
        while self.in_flight >= int(self.current()) and not self.closed:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def close(self) -> None:
        """Let every waiter through: the engine is stopping."""
        self.closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _wake(self) -> None:
        free = int(self.current()) - self.in_flight
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1

    def on_answer(self, latency: float, load: int) -> None:
        """A request sent when `load` requests were in flight (itself included) was answered
        after `latency` seconds. Call before `release`."""
        self.mean_latency = (
            latency
            if self.mean_latency is None
            else (1 - EWMA) * self.mean_latency + EWMA * latency
        )
        limit = self.current()
        measured = self.baseline is not None or self.rate()  # grow once the baseline is known
        if measured and self.in_flight >= int(limit) and self.limit <= limit:  # it held us back
            if self.limit < self.ssthresh:
                self.limit += 1.0  # slow start: doubles every round trip
            else:
                self.limit += max(1.0, GROWTH * self.limit) / self.limit
            self.limit = min(self.limit, self.maximum)
        self._window.append((latency, load))
        if len(self._window) >= self._window_size():
            self._close_window()
            self._window.clear()
        self._wake()

    def on_overload(self, rate_limited: bool = False) -> None:
        """The server refused or failed a request: 5xx, timeout, dropped connection, or an
        isolated 429 (`rate_limited`), which only cuts the limit when no rate paces the
        requests: there the gate's pause answers it, and halving would starve the rate."""
        if rate_limited and self.rate():
            return
        self._cut(0.5)

    def _window_size(self) -> int:
        # About a quarter of a round trip's answers, and enough for a steady median.
        return max(16, min(256, int(self.limit / 4)))

    def _close_window(self) -> None:
        median = statistics.median(latency for latency, _ in self._window)
        load = statistics.fmean(n for _, n in self._window)
        if self.baseline is None or load <= self.baseline_load:
            # The first answers, sent at the lightest load, set the baseline; a window at no
            # more load than that resets it, faster or slower (the server changed, not us).
            self.baseline, self.baseline_load = median, load
            self._slow_windows = 0
            return
        if median <= TOLERANCE * self.baseline:
            self._slow_windows = 0
            return
        self._slow_windows += 1
        if self.rate() or self._slow_windows < 2:
            return  # a known rate paces the requests; one slow window may be chance
        # Each answer: the load it was sent at, scaled to where its latency would be tolerable.
        target = statistics.median(n * TOLERANCE * self.baseline / lat for lat, n in self._window)
        if target < self.limit:
            self.limit = max(MIN_LIMIT, target)
            self.ssthresh = self.limit

    def _cut(self, factor: float) -> None:
        now = self.clock()
        round_trip = self.mean_latency or 1.0
        if now - self._cut_at < round_trip:
            return  # one cut per round trip: answers in flight still reflect the old load
        self._cut_at = now
        self.limit = max(MIN_LIMIT, self.current() * factor)
        self.ssthresh = self.limit
