"""How much of a paid rate limit `factory generate`'s engine uses, at realistic latencies.

Every client answers the same endless workload of Hindi story prompts against the same local
server (tests/openai_server.py, in its own process, a fresh one per client) for `--seconds`,
then stops. Throughput is counted over the steady part of the run (from one latency plus
5 s after the start to the end), so the first round trip, which no client can avoid, does
not blur the comparison. Clients, side by side in this run:

- kahani: the engine `factory generate` uses (adaptive concurrency, rate gate), told `--rpm`
  where the server has a limit;
- fixed 32: an asyncio client with 32 requests in flight that sleeps 1 s after a 429, the
  common approach of today's tools;
- 16 threads: a pool of 16 threads calling the synchronous client, sleeping 1 s after a 429.

Scenarios: a hosted API that allows 1,200 requests/minute (429 beyond, per second) at 0.3 s,
3 s and 10 s per answer, and 10,000/minute at 3 s; a self-hosted server that never answers
429 but slows down once more than K requests are in flight (its capacity is K / latency).
Then the start-up time of the three command lines, against a bare `python -c pass`.

    python bench/generate_throughput.py                 # about 20 minutes
    python bench/generate_throughput.py --seconds 30 --only hosted-3s
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

import openai

from factory.engine import Job, OnlineEngine, Tally, request_key
from factory.languages import get_language
from factory.prompts import Prompt, prompt_set
from factory.providers.base import GenerationParams
from factory.providers.openai_chat import OpenAIChatProvider
from factory.ratelimit import RateGate
from factory.settings import LLMLimits
from factory.store import Answer, RunStore

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "tests" / "openai_server.py"
BIN = Path(sys.executable).parent
MODEL = "gpt-4o-mini"


@dataclass(frozen=True)
class Scenario:
    name: str
    latency: float
    rpm: int | None = None  # the server's limit (429 beyond); given to kahani as --rpm
    capacity: int | None = None  # a self-hosted server's requests at full speed
    jitter: float = 0.2

    @property
    def ceiling(self) -> float:
        """Requests per minute the server can give at best."""
        if self.rpm:
            return float(self.rpm)
        assert self.capacity is not None
        return self.capacity / self.latency * 60


SCENARIOS = [
    Scenario("hosted-0.3s", 0.3, rpm=1200),
    Scenario("hosted-3s", 3.0, rpm=1200),
    Scenario("hosted-10s", 10.0, rpm=1200),
    Scenario("tier-10k-3s", 3.0, rpm=10_000),  # a higher tier: about 500 in flight
    Scenario("selfhosted-K16", 2.0, capacity=16),
    Scenario("selfhosted-K96", 2.0, capacity=96),
]


@dataclass
class Result:
    started: float = 0.0  # monotonic time the client began sending
    answered: list[float] = field(default_factory=list)  # monotonic times of answers
    latencies: list[float] = field(default_factory=list)
    sent: int = 0
    rate_limited: int = 0
    cpu: float = 0.0  # user + system seconds of this process while sending
    system: float = 0.0  # of which in the kernel (SQLite's fsync of every answer, sockets)


class LocalServer:
    """tests/openai_server.py in its own process, so its CPU time is not ours."""

    def __init__(self, s: Scenario) -> None:
        args = [sys.executable, str(SERVER), "--latency", str(s.latency)]
        args += ["--latency-jitter", str(s.jitter)]
        if s.rpm:
            args += ["--rpm", str(s.rpm), "--burst-s", "1"]
        if s.capacity:
            args += ["--capacity", str(s.capacity)]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.base_url = self.proc.stdout.readline().strip()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


@contextmanager
def cpu_time(result: Result) -> Iterator[None]:
    before = os.times()
    yield
    after = os.times()
    result.system = after.system - before.system
    result.cpu = after.user - before.user + result.system


def workload() -> Callable[[], Prompt]:
    """An endless supply of distinct Hindi story prompts."""
    prompts = prompt_set(get_language("hindi"))
    numbers = count()
    return lambda: prompts.prompt(next(numbers))


def run_kahani(url: str, s: Scenario, seconds: float) -> Result:
    result = Result()
    params = GenerationParams(model=MODEL, max_tokens=300)
    next_prompt = workload()
    prompts = [next_prompt() for _ in range(int(s.ceiling * seconds / 60 * 1.5) + 200)]
    limits = LLMLimits(rpm=s.rpm, timeout=120)
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore.open(Path(tmp) / "store.sqlite", create=True)
        keys = [request_key("openai", p.messages, params) for p in prompts]
        store.add_prompts(
            (p.id, p.index, p.variables, [m.model_dump() for m in p.messages], k)
            for p, k in zip(prompts, keys, strict=True)
        )
        jobs = [Job(p.id, p.messages, k) for p, k in zip(prompts, keys, strict=True)]

        def answered(tally: Tally, prompt_id: str, answer: Answer) -> None:
            result.answered.append(time.monotonic())
            result.latencies.append(answer.latency_s)

        async def go() -> Tally:
            provider = OpenAIChatProvider("bench-key", url, limits)
            tally = Tally(total=len(jobs))
            engine = OnlineEngine(
                provider,
                store,
                params,
                RateGate(s.rpm, None),
                limits.max_concurrency,
                limits.max_attempts,
                tally,
                answered,
            )
            asyncio.get_running_loop().call_later(seconds, engine.stop)
            result.started = time.monotonic()
            try:
                await engine.run(jobs)
            finally:
                await engine.close()
            return tally

        with cpu_time(result):
            tally = asyncio.run(go())
        store.close()
    result.sent = tally.done + tally.failed + tally.retries
    result.rate_limited = tally.rate_limited
    return result


def run_fixed_asyncio(url: str, s: Scenario, seconds: float, workers: int = 32) -> Result:
    """32 coroutines sharing one AsyncOpenAI client; a 429 means sleep 1 s and try again."""
    result = Result()
    next_prompt = workload()

    async def go() -> None:
        client = openai.AsyncOpenAI(api_key="bench-key", base_url=url, max_retries=0, timeout=120)
        result.started = time.monotonic()
        deadline = result.started + seconds

        async def worker() -> None:
            while time.monotonic() < deadline:
                prompt = next_prompt()
                while time.monotonic() < deadline:
                    started = time.monotonic()
                    result.sent += 1
                    try:
                        await client.chat.completions.create(
                            model=MODEL,
                            messages=[m.model_dump() for m in prompt.messages],
                            max_tokens=300,
                        )
                    except openai.RateLimitError:
                        result.rate_limited += 1
                        await asyncio.sleep(1)
                        continue
                    result.answered.append(time.monotonic())
                    result.latencies.append(time.monotonic() - started)
                    break

        await asyncio.gather(*(worker() for _ in range(workers)))
        await client.close()

    with cpu_time(result):
        asyncio.run(go())
    return result


def run_thread_pool(url: str, s: Scenario, seconds: float, threads: int = 16) -> Result:
    """16 threads, each retrying a 429 after a fixed one-second sleep."""
    result = Result()
    client = openai.OpenAI(api_key="bench-key", base_url=url, timeout=120, max_retries=0)
    next_prompt = workload()
    lock = threading.Lock()
    result.started = time.monotonic()
    deadline = result.started + seconds

    def worker() -> None:
        while time.monotonic() < deadline:
            with lock:
                prompt = next_prompt()
            while time.monotonic() < deadline:
                started = time.monotonic()
                with lock:
                    result.sent += 1
                try:
                    client.chat.completions.create(
                        model=MODEL,
                        messages=[m.model_dump() for m in prompt.messages],
                        max_tokens=300,
                    )
                except openai.RateLimitError:
                    with lock:
                        result.rate_limited += 1
                    time.sleep(1)
                    continue
                with lock:
                    result.answered.append(time.monotonic())
                    result.latencies.append(time.monotonic() - started)
                break

    with cpu_time(result), ThreadPoolExecutor(threads) as pool:
        for _ in range(threads):
            pool.submit(worker)
    return result


CLIENTS = {"kahani": run_kahani, "fixed 32": run_fixed_asyncio, "16 threads": run_thread_pool}


def startup(command: list[str], runs: int = 5) -> float:
    """Median seconds for a command to start and exit."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="run length per client")
    parser.add_argument("--only", help="run only this scenario")
    args = parser.parse_args()

    print(
        f"{'scenario':16} {'client':11} {'req/min':>8} {'of ceiling':>10} {'429s':>7} "
        f"{'latency x':>9} {'CPU ms/req':>10} {'of it sys':>9}"
    )
    for s in SCENARIOS:
        if args.only and s.name != args.only:
            continue
        steady_from = s.latency + 5
        rates = {}
        for name, run in CLIENTS.items():
            server = LocalServer(s)
            try:
                r = run(server.base_url, s, args.seconds)
            finally:
                server.stop()
            start, end = r.started + steady_from, r.started + args.seconds
            window = [t for t in r.answered if start <= t <= end]
            per_minute = len(window) / max(1e-9, args.seconds - steady_from) * 60
            rates[name] = per_minute
            inflation = statistics.median(r.latencies) / s.latency if r.latencies else 0.0
            share_429 = r.rate_limited / max(1, r.sent)
            cpu_ms = 1000 * r.cpu / max(1, len(r.answered))
            sys_ms = 1000 * r.system / max(1, len(r.answered))
            print(
                f"{s.name:16} {name:11} {per_minute:8.0f} {per_minute / s.ceiling:10.3f} "
                f"{share_429:7.1%} {inflation:9.2f} {cpu_ms:10.2f} {sys_ms:9.2f}",
                flush=True,
            )
        print(
            f"{s.name:16} ratio kahani / fixed 32: {rates['kahani'] / rates['fixed 32']:.2f}, "
            f"kahani / 16 threads: {rates['kahani'] / rates['16 threads']:.2f}"
        )

    print("\nstart-up, median of 5 (budget 0.5 s)")
    bare = startup([sys.executable, "-c", "pass"])
    print(f"{'python -c pass':28} {bare:6.2f} s  (baseline)")
    for command in (
        ["factory", "--help"],
        ["judge", "--help"],
        ["trainer", "--help"],
        ["factory", "prompts", "--lang", "hindi", "--n", "1"],
    ):
        seconds = startup([str(BIN / command[0]), *command[1:]])
        print(
            f"{' '.join(command):28} {seconds:6.2f} s  ({seconds / 0.5:.2f} of the budget, "
            f"{seconds / bare:.1f}x python)"
        )


if __name__ == "__main__":
    main()
