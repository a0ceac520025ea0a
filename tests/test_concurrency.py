"""The adaptive concurrency limit, driven by simulated servers in virtual time: it follows a
known rate at any latency, finds a self-hosted server's capacity from its latency alone, and
backs off when the server fails. (bench/generate_throughput.py measures the same over real
HTTP.)"""

import heapq
import random
import statistics

from factory.concurrency import TOLERANCE, AdaptiveLimit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def simulate(
    latency: float,
    seconds: float,
    rate: float | None = None,
    capacity: int | None = None,
    jitter: float = 0.0,
    maximum: int = 2000,
    seed: int = 0,
) -> tuple[AdaptiveLimit, list[float], list[float]]:
    """Requests leave whenever the limit allows (and at most `rate` per second); each takes
    `latency`, times in-flight / capacity past the capacity. Returns the limit, the answer
    times and their latencies."""
    clock = Clock()
    limit = AdaptiveLimit(maximum, lambda: rate, clock=clock)
    rng = random.Random(seed)
    events: list[tuple[float, float, int]] = []  # (finish time, latency, load when sent)
    next_send = 0.0
    answered, latencies = [], []
    while clock.now < seconds:
        # Send what the limit and the rate allow now.
        while limit.in_flight < int(limit.current()) and next_send <= clock.now:
            limit.in_flight += 1
            load = max(1.0, limit.in_flight / capacity) if capacity else 1.0
            took = latency * load * (rng.lognormvariate(0, jitter) if jitter else 1.0)
            heapq.heappush(events, (clock.now + took, took, limit.in_flight))
            if rate:
                next_send = max(next_send, clock.now) + 1 / rate
        upcoming = [events[0][0]] if events else []
        if rate and limit.in_flight < int(limit.current()):
            upcoming.append(next_send)
        clock.now = max(clock.now, min(upcoming))
        while events and events[0][0] <= clock.now:
            _, took, load = heapq.heappop(events)
            limit.on_answer(took, load)
            limit.in_flight -= 1
            answered.append(clock.now)
            latencies.append(took)
    return limit, answered, latencies


def per_second(answered: list[float], start: float, end: float) -> float:
    return sum(start <= t < end for t in answered) / (end - start)


def test_a_known_rate_is_held_at_any_latency():
    for latency in (0.3, 3.0, 10.0):
        _, answered, _ = simulate(latency, 120, rate=20.0, jitter=0.3)
        assert per_second(answered, latency + 10, 120) > 0.97 * 20, latency


def test_without_a_rate_a_self_hosted_servers_capacity_is_found_from_latency():
    for capacity in (8, 32, 128):
        limit, answered, latencies = simulate(2.0, 300, capacity=capacity, jitter=0.2)
        throughput = per_second(answered, 150, 300)
        assert throughput > 0.9 * capacity / 2.0, capacity
        # It does not keep piling requests onto the server: latency stays near the tolerance.
        steady = [lat for t, lat in zip(answered, latencies, strict=True) if t > 150]
        assert statistics.median(steady) < 2.0 * (TOLERANCE + 0.3), capacity
        assert limit.limit < 2.5 * capacity


def test_latency_that_does_not_follow_load_is_not_blamed_on_it():
    """A server whose answers simply take longer (a longer model, other users) at the same
    load is no reason to give up concurrency: the baseline moves instead of the limit."""
    clock = Clock()
    limit = AdaptiveLimit(2000, lambda: None, clock=clock)
    limit.limit = limit.ssthresh = 40.0
    for _ in range(100):
        clock.now += 0.05
        limit.on_answer(3.0, 40)
    for _ in range(100):  # latency doubles at the same load
        clock.now += 0.05
        limit.on_answer(6.0, 40)
    assert limit.baseline == 6.0
    assert limit.limit >= 40.0


def test_latency_that_follows_load_brings_the_limit_down_to_the_capacity():
    clock = Clock()
    limit = AdaptiveLimit(2000, lambda: None, clock=clock)
    limit.limit = limit.ssthresh = 60.0
    for _ in range(32):
        limit.on_answer(2.0, 10)  # 10 in flight: 2 s
    for _ in range(16):
        limit.on_answer(10.0, 50)  # 50 in flight: five times slower, a server that takes 10
    assert limit.limit == 60.0  # one slow window may be chance
    for _ in range(16):
        limit.on_answer(10.0, 50)
    assert limit.limit == 10 * 1.3  # the load at which 50's latency would be tolerable


def test_failures_halve_the_limit_once_per_round_trip():
    clock = Clock()
    limit = AdaptiveLimit(1000, lambda: None, clock=clock)
    limit.limit = 64.0
    limit.mean_latency = 1.0
    clock.now = 10.0
    limit.on_overload()
    limit.on_overload()  # the same round trip: no second cut
    assert limit.limit == 32.0
    clock.now = 12.0
    limit.on_overload()
    assert limit.limit == 16.0


def test_an_isolated_429_does_not_cut_a_known_rate():
    clock = Clock()
    limit = AdaptiveLimit(1000, lambda: 20.0, clock=clock)
    clock.now = 5.0
    limit.on_overload(rate_limited=True)
    assert limit.limit == 1000.0
    limit.on_overload(rate_limited=False)
    assert limit.limit == 500.0


def test_without_a_rate_it_measures_at_a_light_load_then_doubles_each_round_trip():
    clock = Clock()
    limit = AdaptiveLimit(1000, lambda: None, clock=clock)
    assert limit.current() == 4
    for _ in range(16):  # the first window, at 4 in flight: the baseline
        limit.in_flight = 4
        limit.on_answer(1.0, 4)
    assert (limit.limit, limit.baseline, limit.baseline_load) == (4.0, 1.0, 4.0)
    for _ in range(4):  # a round trip's answers, each slot refilled at once
        limit.in_flight = int(limit.current())
        limit.on_answer(1.0, 4)
    assert limit.limit == 8.0


def test_the_limit_does_not_grow_while_it_is_not_what_holds_requests_back():
    clock = Clock()
    limit = AdaptiveLimit(1000, lambda: None, clock=clock)
    limit.in_flight = 2  # the queue ran dry: 2 in flight under a limit of 4
    for _ in range(100):
        limit.on_answer(1.0, 2)
    assert limit.limit == 4.0
