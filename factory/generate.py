"""`factory generate`: resolve the run's settings, make its prompts, answer them through
`factory.llm` (checking each answer as it arrives), then clean and export the run."""

import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from factory import llm
from factory.clean import Cleaner, clean_store, rejects_summary, verdict_row
from factory.decontaminate import decontaminator_for
from factory.engine import Tally
from factory.errors import KahaniError
from factory.export import SplitFractions, export_run
from factory.from_dataset import DatasetPromptSet, InvalidRow, count_rows, dataset_prompt_set
from factory.languages import get_language
from factory.paths import TEMPLATES_DIR, VOCAB_DIR
from factory.pricing import PriceTable
from factory.prompts import PromptSet, prompt_set
from factory.providers.base import GenerationParams
from factory.settings import (
    API_DEFAULT_MODEL,
    DEFAULT_MAX_TOKENS,
    LOCAL_DEFAULT_MODEL,
    LOCAL_SAMPLING,
    RunConfig,
    describe,
    fingerprint,
    load_config,
    save_config,
)
from factory.store import Answer, RunStore, VerdictRow
from factory.templates import find_template, template_path

OFFLINE_MODEL_NOTE = (
    "the offline default model (SmolLM2-135M) writes English only, so a {lang} run would "
    "spend CPU on answers that are all rejected; for {lang}, pass --base-url of a local "
    "OpenAI-compatible server (Ollama: --base-url http://localhost:11434/v1 --model "
    "qwen2.5:7b; vLLM or llama.cpp alike) or set OPENAI_API_KEY, or name a local model "
    "that writes {lang} with --provider local --model DIR"
)


def resolve(
    given: dict[str, Any],
    resume: Path | None,
    runs_dir: Path,
    has_key: bool,
    dry_run: bool = False,
) -> tuple[RunConfig, Path]:
    """The run's settings: defaults < the stored config (resume) < `given` (the run file's
    settings, then the flags). A resume that changes a fixed setting is refused; a dry run
    looks at no earlier run."""
    stored = load_config(resume) if resume else None
    if stored:
        given = {**stored.settings(), **given}
    if not given.get("lang"):
        raise KahaniError("--lang is required (or --resume RUN_DIR)")
    language = get_language(given["lang"])
    provider = given.get("provider") or (
        "openai" if has_key or given.get("base_url") or dry_run else "local"
    )
    model = given.get("model") or (
        LOCAL_DEFAULT_MODEL if provider == "local" else API_DEFAULT_MODEL
    )
    if provider == "local" and not given.get("model") and language.name != "english":
        raise KahaniError(OFFLINE_MODEL_NOTE.format(lang=language.name))
    sampling = LOCAL_SAMPLING if provider == "local" else {"max_tokens": DEFAULT_MAX_TOKENS}
    settings = {
        **given,
        **{k: v for k, v in sampling.items() if given.get(k) is None},
        "lang": language.name,
        "provider": provider,
        "model": model,
    }
    template = find_template(Path(given["template"])) if given.get("template") else None
    vocab_dir = Path(given["vocab_dir"]) if given.get("vocab_dir") else None
    shipped_template = template_path(TEMPLATES_DIR, language.kind, language.name)
    if vocab_dir is not None and not vocab_dir.is_dir():
        raise KahaniError(f"word-list folder {vocab_dir} does not exist")
    dataset = Path(given["from_dataset"]) if given.get("from_dataset") else None
    if dataset is not None:
        if not dataset.exists():
            raise KahaniError(f"--from-dataset {dataset} does not exist")
        if template is None:
            raise KahaniError(
                "--from-dataset needs --template: a template whose variables are the "
                "dataset's columns (shipped: translate/hindi.j2, translate/bangla.j2, "
                "translate/marathi.j2)"
            )
        if given.get("diversify"):
            raise KahaniError(
                "--diversify draws from word lists; it does not go with --from-dataset"
            )
        if given.get("n") is None:  # every row, unless --n says otherwise
            settings["n"] = count_rows(dataset)
    elif given.get("column_map"):
        raise KahaniError("--column-map maps a dataset's columns; it needs --from-dataset")
    settings["name"] = given.get("name") or re.sub(
        r"[^A-Za-z0-9._-]+", "-", f"{language.name}-{model}-seed{given.get('seed', 0)}"
    )
    run_dir = resume or runs_dir / settings["name"]
    previous = stored
    if previous is None and not dry_run and (run_dir / "config.json").is_file():
        previous = load_config(run_dir)
    try:
        config = RunConfig(
            **settings,
            template_sha=fingerprint(template or shipped_template),
            vocab_sha=fingerprint(*(vocab_dir or VOCAB_DIR / language.name).glob("*.txt")),
            **({"run_id": previous.run_id} if previous else {}),
        )
    except ValidationError as err:
        raise KahaniError(describe(err, RunConfig, "settings")) from None
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


def prompt_set_for(config: RunConfig) -> PromptSet | DatasetPromptSet:
    """The run's prompts: from a dataset's rows, or from the template's word lists."""
    language = get_language(config.lang)
    if config.from_dataset is not None:
        return dataset_prompt_set(
            language, config.from_dataset, config.template, config.column_map, config.var
        )
    return prompt_set(
        language, config.template, config.vocab_dir, config.seed, config.var, config.diversify
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


def endpoint_for(config: RunConfig, api_key: str | None) -> llm.Endpoint:
    return llm.Endpoint(
        **config.model_dump(include=set(llm.LLMLimits.model_fields)),
        provider=config.provider,
        model=config.model,
        base_url=config.base_url,
        api_key=SecretStr(api_key) if api_key else None,
    )


def run_generate(
    config: RunConfig,
    run_dir: Path,
    api_key: str | None,
    prices: PriceTable,
    retry_rejected: bool = False,
) -> int:
    """Run (or continue) a generation, then clean and export; returns the exit code."""
    prompt_set = prompt_set_for(config)
    prompt_set.check_count(config.n, config.start)
    cleaner = Cleaner.for_run(config)
    endpoint = endpoint_for(config, api_key)
    llm.check_endpoint(endpoint)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise KahaniError(f"cannot write run folder {run_dir}: {err.strerror}") from None
    store = RunStore.open(run_dir / "store.sqlite", create=True)  # a damaged one stops here
    save_config(run_dir, config)
    try:
        return _generate(
            config, run_dir, store, prompt_set, cleaner, endpoint, prices, retry_rejected
        )
    finally:
        store.close()


def _generate(
    config: RunConfig,
    run_dir: Path,
    store: RunStore,
    prompt_set: PromptSet | DatasetPromptSet,
    cleaner: Cleaner,
    endpoint: llm.Endpoint,
    prices: PriceTable,
    retry_rejected: bool,
) -> int:
    # Verdicts made as answers arrive are derived data (cleaning recomputes them all): they
    # are written a hundred at a time, not with a disk sync each.
    verdicts: list[VerdictRow] = []

    def check(tally: Tally, prompt_id: str, answer: Answer) -> None:
        verdict = cleaner.check(answer.text, answer.finish_reason, store.variables_of(prompt_id))
        verdicts.append(verdict_row(prompt_id, verdict))
        tally.rejected += not verdict.ok
        if len(verdicts) >= 100:
            store.save_verdicts(verdicts)
            verdicts.clear()

    invalid: list[InvalidRow] = []  # dataset rows that could not be made into a prompt

    def before_sending(ids: list[str]) -> None:
        store.add_invalid((r.id, r.index, r.variables, r.error) for r in invalid)
        if retry_rejected:
            store.requeue(store.retryable_rejects(ids))

    def requests() -> Iterator[llm.Request]:
        for p in prompt_set.take(config.n, config.start):
            if isinstance(p, InvalidRow):
                invalid.append(p)
                continue
            yield llm.Request(p.id, p.messages, p.index, p.variables)

    started = time.monotonic()
    try:
        outcome = llm.answer(
            endpoint,
            store,
            requests(),
            params_for(config),
            label=config.name,
            on_answer=check,
            before_sending=before_sending,
            tag=config.run_id,
        )
    finally:
        store.save_verdicts(verdicts)
    print(status_text(run_dir, store, config, prices))
    if outcome.tally.done:
        print(speed_line(outcome.tally, time.monotonic() - started))
    if outcome.interrupted:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    counts = store.counts()
    kept = 0
    if counts.done:
        verdicts = clean_store(
            store,
            cleaner,
            config.dedup_threshold,
            decontaminator=decontaminator_for(config, config.lang),
        )
        kept = verdicts.get("ok", 0)
        print(f"cleaned  {kept:,} kept; rejected: {rejects_summary(verdicts)}")
        if config.export and kept:
            splits = export_run(
                store, config, run_dir / "dataset", prices, SplitFractions(), config.license
            )
            parts = ", ".join(f"{s} {n:,}" for s, n in splits.items())
            print(f"dataset  {run_dir / 'dataset'} ({parts})")
    if counts.failed or counts.pending:
        print(
            f"not done {counts.failed:,} failed, {counts.pending:,} pending: run the same "
            "command again to retry them"
        )
        return 1
    if config.export and not kept:
        print(
            "no dataset: no answer passed the checks (see the rejected counts above and "
            f"`factory report {run_dir}`)"
        )
        return 1
    return 0


def speed_line(tally: Tally, seconds: float) -> str:
    minutes = max(seconds, 1e-9) / 60
    return (
        f"speed    {tally.done / minutes:,.0f} answers/min, "
        f"{tally.completion_tokens / max(seconds, 1e-9):,.0f} tokens/s (this invocation)"
    )


def status_text(run_dir: Path, store: RunStore, config: RunConfig, prices: PriceTable) -> str:
    counts = store.counts()
    price = prices.get(config.model)
    lines = [
        f"run      {run_dir} ({config.provider}, {config.model})",
        f"prompts  {counts.done:,} done, {counts.failed:,} failed, {counts.pending:,} pending",
        f"tokens   {counts.usage.total_in:,} in, {counts.usage.total_out:,} out",
    ]
    if price:
        lines.append(f"cost     ${price.cost_of(counts.usage):,.4f} (prices as of {prices.as_of})")
    for error, count in store.errors():
        lines.append(f"failed   {count:,} x {error}")
    if counts.invalid:
        reasons = Counter(error.partition(":")[0] for _, error in store.invalid_prompts())
        shown = ", ".join(f"{reason} {n:,}" for reason, n in reasons.most_common())
        lines.append(f"invalid  {counts.invalid:,} rows could not be made into prompts ({shown})")
    return "\n".join(lines)
