"""`factory generate`: resolve the run's settings, register its prompts, run the engine."""

import asyncio
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import openai
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from factory.batch import BatchRunner
from factory.clean import Cleaner, Judged, clean_store, ensure_schema, rejects_summary, save_verdict
from factory.errors import KahaniError
from factory.export import SplitFractions, export_run
from factory.languages import get_language
from factory.paths import TEMPLATES_DIR, VOCAB_DIR
from factory.pricing import PriceTable
from factory.prompts import Message, PromptSet
from factory.providers import make_provider
from factory.providers.base import GenerationParams, Provider
from factory.ratelimit import RateGate
from factory.runconfig import (
    RunConfig,
    RunFile,
    fingerprint,
    load_config,
    new_run_id,
    save_config,
)
from factory.runner import Job, Runner, Tally, request_key
from factory.store import Answer, RunStore
from factory.templates import PromptTemplate, template_path
from factory.validate import Limits

DEFAULTS: dict[str, object] = {
    "temperature": None,
    "top_p": None,
    "n": 100,
    "start": 0,
    "seed": 0,
    "max_tokens": 1024,
    "json_mode": False,
    "concurrency": 32,
    "max_attempts": 6,
    "timeout": 120.0,
    "batch_poll_seconds": 30.0,
}
LOCAL_DEFAULT_MODEL = "smollm2"
# Small local models loop under greedy decoding and rarely stop early: sample, and cap
# answers nearer a story's length.
LOCAL_DEFAULTS = {"temperature": 0.7, "top_p": 0.9, "max_tokens": 512}


def resolve(
    flags: RunFile,
    run_file: RunFile | None,
    resume: Path | None,
    runs_dir: Path,
    api_key: str | None,
) -> tuple[RunConfig, Path]:
    """Merge defaults < stored config (resume) < run file < flags, and check a resume."""
    given = {
        **(run_file.model_dump(exclude_none=True) if run_file else {}),
        **flags.model_dump(exclude_none=True),
    }
    stored = load_config(resume) if resume else None
    if stored:
        base = stored.model_dump()
        base.update(
            lang=stored.language,
            var=stored.variables,
            template=Path(stored.template),
            vocab_dir=Path(stored.vocab_dir),
        )
        given = {**base, **given}
    if "lang" not in given:
        raise KahaniError("--lang is required (or --resume RUN_DIR)")
    language = get_language(given["lang"])
    provider = given.get("provider") or ("openai" if api_key or given.get("base_url") else "local")
    model = given.get("model") or (LOCAL_DEFAULT_MODEL if provider == "local" else "gpt-4o-mini")
    template = Path(
        given.get("template") or template_path(TEMPLATES_DIR, language.kind, language.name)
    )
    vocab_dir = Path(given.get("vocab_dir") or VOCAB_DIR / language.name)
    defaults = {**DEFAULTS, **(LOCAL_DEFAULTS if provider == "local" else {})}
    settings = {**defaults, **{k: v for k, v in given.items() if k in defaults}}
    seed = settings["seed"]
    name = given.get("name") or re.sub(
        r"[^A-Za-z0-9._-]+", "-", f"{language.name}-{model}-seed{seed}"
    )
    if not template.is_file():
        raise KahaniError(f"template {template} does not exist")
    if not vocab_dir.is_dir():
        raise KahaniError(f"word-list folder {vocab_dir} does not exist")
    run_dir = resume or runs_dir / name
    previous = stored or (load_config(run_dir) if (run_dir / "config.json").is_file() else None)
    config = RunConfig(
        name=name,
        run_id=previous.run_id if previous else new_run_id(),
        language=language.name,
        template=str(template),
        template_sha=fingerprint(template),
        vocab_dir=str(vocab_dir),
        vocab_sha=fingerprint(*vocab_dir.glob("*.txt")),
        variables=given.get("var") or {},
        provider=provider,
        model=model,
        base_url=given.get("base_url"),
        gen_seed=given.get("gen_seed"),
        rpm=given.get("rpm"),
        tpm=given.get("tpm"),
        **settings,
    )
    for key in ("n", "concurrency", "max_attempts", "max_tokens"):
        if getattr(config, key) < 1:
            raise KahaniError(f"--{key.replace('_', '-')} must be at least 1")
    if previous:
        changed = config.differences(previous)
        if changed:
            detail = ", ".join(
                f"{k}: {getattr(previous, k)!r} -> {getattr(config, k)!r}" for k in changed
            )
            raise KahaniError(
                f"run {run_dir} was started with different settings ({detail}); "
                "keep them, or pass --name for a new run"
            )
    return config, run_dir


def prompt_set_for(config: RunConfig) -> PromptSet:
    return PromptSet(
        get_language(config.language),
        PromptTemplate(Path(config.template)),
        Path(config.vocab_dir),
        seed=config.seed,
        overrides=config.variables,
    )


def params_for(config: RunConfig) -> GenerationParams:
    return GenerationParams(
        model=config.model,
        temperature=config.temperature,
        top_p=config.top_p,
        max_tokens=config.max_tokens,
        seed=config.gen_seed,
        json_mode=config.json_mode,
    )


def prepare_run(
    config: RunConfig, run_dir: Path, retry_rejected: bool = False
) -> tuple[RunStore, list[Job]]:
    """Create the run folder, register the run's prompts, and list those still unanswered
    (with `retry_rejected`, also those whose answer the validators rejected)."""
    prompt_set = prompt_set_for(config)
    prompt_set.check_count(config.n, config.start)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(run_dir, config)
    except OSError as err:
        raise KahaniError(f"cannot write run folder {run_dir}: {err.strerror}") from None
    store = RunStore(run_dir / "store.sqlite")
    params = params_for(config)
    known = store.known_ids()
    wanted = []
    batch = []
    for index in range(config.start, config.start + config.n):
        prompt = prompt_set.prompt(index)
        wanted.append(prompt.id)
        if prompt.id not in known:
            key = request_key(config.provider, prompt.messages, params)
            messages = [m.model_dump() for m in prompt.messages]
            batch.append((prompt.id, index, prompt.variables, messages, key))
        if len(batch) >= 10_000:
            store.add_prompts(batch)
            batch = []
    store.add_prompts(batch)
    if retry_rejected:
        ensure_schema(store.db)
        wanted_set = set(wanted)
        rejected = [
            (pid, reason)
            for pid, reason in store.db.execute("SELECT prompt_id, reason FROM rejects")
            if pid in wanted_set and reason not in ("request_failed", "corrupt_line")
        ]
        store.requeue(rejected)
    jobs = [
        Job(pid, [Message.model_validate(m) for m in json.loads(messages)], key)
        for pid, _, messages, key in store.unfinished(wanted)
    ]
    return store, jobs


@dataclass(frozen=True)
class Cleaning:
    """What happens to answers: the validators' limits, the near-duplicate threshold, and
    whether the kept rows are exported to `runs/<name>/dataset/` at the end."""

    limits: Limits
    threshold: float = 0.8
    export: bool = True
    license_id: str = "cc-by-4.0"


def run_generate(
    config: RunConfig,
    run_dir: Path,
    api_key: str | None,
    prices: PriceTable,
    cleaning: Cleaning,
    retry_rejected: bool = False,
) -> int:
    """Run (or continue) a generation, then clean and export; returns the exit code."""
    engine = _make_engine(config, api_key)
    store, jobs = prepare_run(config, run_dir, retry_rejected)
    cleaner = Cleaner.for_run(config, cleaning.limits)
    ensure_schema(store.db)

    def validate(tally: Tally, prompt_id: str, answer: Answer) -> None:
        verdict = cleaner.check(answer.text, answer.finish_reason, store.variables_of(prompt_id))
        save_verdict(store.db, Judged(prompt_id, verdict))
        tally.rejected += not verdict.ok

    console = Console(stderr=True)
    try:
        interrupted = asyncio.run(
            _run_with_progress(config, store, jobs, engine, prices, console, validate)
        )
        print(status_text(run_dir, store, config, prices))
        counts = store.counts()
        kept = 0
        if not interrupted and counts.done:
            verdicts = clean_store(store.db, cleaner, cleaning.threshold)
            kept = verdicts.get("ok", 0)
            print(f"cleaned  {kept:,} kept; rejected: {rejects_summary(verdicts)}")
            if cleaning.export and kept:
                splits = export_run(
                    store.db,
                    config,
                    run_dir / "dataset",
                    prices,
                    SplitFractions(),
                    cleaning.license_id,
                )
                parts = ", ".join(f"{s} {n:,}" for s, n in splits.items())
                print(f"dataset  {run_dir / 'dataset'} ({parts})")
    finally:
        store.close()
    if interrupted:
        console.print("interrupted; run the same command again to resume")
        return 130
    exported = kept or not cleaning.export  # an export with no rows kept is a failure
    return 0 if counts.failed == 0 and counts.pending == 0 and exported else 1


def _make_engine(config: RunConfig, api_key: str | None) -> Provider | openai.AsyncOpenAI:
    """A provider for request-by-request runs, or an API client for the Batch API."""
    if config.provider != "openai-batch":
        return make_provider(
            config.provider,
            model=config.model,
            api_key=api_key,
            base_url=config.base_url,
            timeout=config.timeout,
        )
    if not api_key and not config.base_url:
        raise KahaniError(
            "--provider openai-batch needs OPENAI_API_KEY (or --api-key) or --base-url"
        )
    # The client's own retries cover the few file and batch calls; answers come in files.
    return openai.AsyncOpenAI(
        api_key=api_key or "not-needed",
        base_url=config.base_url,
        timeout=config.timeout,
        max_retries=5,
    )


async def _run_with_progress(
    config: RunConfig,
    store: RunStore,
    jobs: list[Job],
    engine: Provider | openai.AsyncOpenAI,
    prices: PriceTable,
    console: Console,
    on_answer: Callable[[Tally, str, Answer], None],
) -> bool:
    """Run the jobs under a live progress bar; True when stopped by a signal."""
    batch = config.provider == "openai-batch"
    price = prices.get(config.model)
    progress = Progress(
        TextColumn(config.name),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,  # the summary printed after the run replaces the bar
    )
    task = progress.add_task("generate", total=len(jobs), detail="")

    def update(tally: Tally) -> None:
        minutes = max(1e-9, (time.monotonic() - tally.started) / 60)
        spend = price.cost(tally.prompt_tokens, tally.completion_tokens, batch) if price else 0.0
        detail = (
            f"{tally.done / minutes:,.0f}/min · {tally.prompt_tokens + tally.completion_tokens:,}"
            f" tok · ${spend:,.2f} · cached {tally.cached} · failed {tally.failed}"
            f" · rejected {tally.rejected}"
            f" · retries {tally.retries}"
        )
        progress.update(task, completed=tally.done + tally.cached + tally.failed, detail=detail)

    with progress:
        try:
            if isinstance(engine, openai.AsyncOpenAI):
                return await _run_batches(config, store, jobs, engine, update, on_answer)
            runner = Runner(
                engine,
                store,
                params_for(config),
                RateGate(config.rpm, config.tpm),
                config.concurrency,
                config.max_attempts,
                on_update=update,
                on_answer=on_answer,
            )
            await runner.run(jobs)
            return runner.stopping.is_set()
        finally:
            await engine.close()


async def _run_batches(
    config: RunConfig,
    store: RunStore,
    jobs: list[Job],
    client: openai.AsyncOpenAI,
    update: Callable[[Tally], None],
    on_answer: Callable[[Tally, str, Answer], None],
) -> bool:
    tally = Tally(total=len(jobs))
    runner = BatchRunner(
        client,
        store,
        params_for(config),
        config.run_id,
        config.batch_poll_seconds,
        config.max_attempts,
        on_update=update,
        on_answer=on_answer,
    )
    try:
        await runner.run(jobs, tally)
    except openai.APIError as err:
        raise KahaniError(
            f"the Batch API failed: {err}; nothing is lost, run the same command to resume"
        ) from None
    return False


def status_text(run_dir: Path, store: RunStore, config: RunConfig, prices: PriceTable) -> str:
    counts = store.counts()
    price = prices.get(config.model)
    lines = [
        f"run      {run_dir} ({config.provider}, {config.model})",
        f"prompts  {counts.done:,} done, {counts.failed:,} failed, {counts.pending:,} pending",
        f"tokens   {counts.prompt_tokens + counts.batch_prompt_tokens:,} in, "
        f"{counts.completion_tokens + counts.batch_completion_tokens:,} out",
    ]
    if price:
        cost = price.cost(counts.prompt_tokens, counts.completion_tokens) + price.cost(
            counts.batch_prompt_tokens, counts.batch_completion_tokens, batch=True
        )
        lines.append(f"cost     ${cost:,.4f} (prices as of {prices.as_of})")
    for error, count in store.errors():
        lines.append(f"failed   {count:,} x {error}")
    return "\n".join(lines)


def api_key_from(flag: str | None) -> str | None:
    return flag or os.environ.get("OPENAI_API_KEY") or None
