"""Throughput of `factory generate`'s engine against a rate-limited OpenAI-compatible server.

Baseline: the approach of the scripts kahani replaces, a pool of 16 threads each calling
the synchronous OpenAI client and sleeping a second after a 429. Both answer the same workload
against the same local server (tests/openai_server.py) with a requests-per-minute limit
and a fixed latency, one after the other in this run; each gets a fresh server.

    python bench/generate_throughput.py            # 1,200 requests/minute, 0.3 s, ~1 min each
    python bench/generate_throughput.py --seconds 20
"""

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai

from factory.languages import get_language
from factory.paths import TEMPLATES_DIR, VOCAB_DIR
from factory.prompts import Prompt, PromptSet
from factory.providers.base import GenerationParams
from factory.providers.openai_chat import OpenAIChatProvider
from factory.ratelimit import RateGate
from factory.runner import Job, Runner, request_key
from factory.store import RunStore
from factory.templates import PromptTemplate, template_path

SERVER = Path(__file__).resolve().parent.parent / "tests" / "openai_server.py"


class LocalServer:
    """tests/openai_server.py in its own process, so its CPU time is not ours."""

    def __init__(self, rpm: int, latency: float) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(SERVER),
                "--rpm",
                str(rpm),
                "--burst-s",
                "1",
                "--latency",
                str(latency),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.base_url = self.proc.stdout.readline().strip()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def hindi_prompts(n: int) -> list[Prompt]:
    language = get_language("hindi")
    template = PromptTemplate(template_path(TEMPLATES_DIR, "story", "hindi"))
    return list(PromptSet(language, template, VOCAB_DIR / "hindi").take(n))


def run_kahani(base_url: str, prompts: list[Prompt], rpm: int) -> dict:
    params = GenerationParams(model="gpt-4o-mini", max_tokens=300)
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp) / "store.sqlite")
        store.add_prompts(
            (
                p.id,
                p.index,
                p.variables,
                [m.model_dump() for m in p.messages],
                request_key("openai", p.messages, params),
            )
            for p in prompts
        )
        jobs = [Job(p.id, p.messages, request_key("openai", p.messages, params)) for p in prompts]
        provider = OpenAIChatProvider("bench-key", base_url, timeout=30)

        async def go():
            runner = Runner(provider, store, params, RateGate(rpm, None), 64, 6)
            try:
                return await runner.run(jobs)
            finally:
                await provider.close()

        cpu, wall = time.process_time(), time.monotonic()
        tally = asyncio.run(go())
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        store.close()
    return {"ok": tally.done, "wall": wall, "429s": tally.rate_limited, "cpu": cpu}


def run_thread_pool(base_url: str, prompts: list[Prompt]) -> dict:
    """16 threads, each retrying a 429 after a fixed one-second sleep until it succeeds."""
    client = openai.OpenAI(api_key="bench-key", base_url=base_url, timeout=30, max_retries=0)
    rate_limited = 0

    def send(prompt: Prompt) -> None:
        nonlocal rate_limited
        while True:
            try:
                client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[m.model_dump() for m in prompt.messages],
                    max_tokens=300,
                )
                return
            except openai.RateLimitError:
                rate_limited += 1
                time.sleep(1)

    cpu, wall = time.process_time(), time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(send, prompts))
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    return {"ok": len(prompts), "wall": wall, "429s": rate_limited, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rpm", type=int, default=1200)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    prompts = hindi_prompts(int(args.rpm * args.seconds / 60))
    print(f"{len(prompts)} requests per workload, limit {args.rpm}/min, latency {args.latency}s")

    results = {}
    for name, run in [
        ("kahani engine", lambda url: run_kahani(url, prompts, args.rpm)),
        ("16-thread pool", lambda url: run_thread_pool(url, prompts)),
    ]:
        server = LocalServer(args.rpm, args.latency)
        try:
            results[name] = run(server.base_url)
        finally:
            server.stop()

    print(f"{'':16} {'answered':>9} {'req/min':>8} {'of limit':>9} {'429s':>6} {'CPU ms/req':>11}")
    for name, r in results.items():
        per_minute = r["ok"] / r["wall"] * 60
        cpu_ms = 1000 * r["cpu"] / max(1, r["ok"])
        print(
            f"{name:16} {r['ok']:>9} {per_minute:>8.0f} {per_minute / args.rpm:>9.3f}"
            f" {r['429s']:>6} {cpu_ms:>11.2f}"
        )
    ours, base = results["kahani engine"], results["16-thread pool"]
    ratio = (ours["ok"] / ours["wall"]) / max(1e-9, base["ok"] / base["wall"])
    print(f"ratio kahani / thread pool (answered per minute): {ratio:.2f}")


if __name__ == "__main__":
    main()
