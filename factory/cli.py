"""`factory`: prompts from templates and word lists, then generations from LLMs."""

import glob
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from factory.clean import Cleaner, clean_store, ensure_schema, require_kept
from factory.errors import KahaniError, run_cli
from factory.estimate import estimate_run, format_estimate
from factory.export import SplitFractions, export_run, push
from factory.generate import (
    Cleaning,
    api_key_from,
    prompt_set_for,
    resolve,
    run_generate,
    status_text,
)
from factory.importer import import_file
from factory.languages import LANGUAGES, get_language
from factory.paths import PRICES_FILE, TEMPLATES_DIR, VOCAB_DIR
from factory.pricing import load_prices
from factory.prompts import PromptSet, parse_overrides
from factory.runconfig import RunFile, load_config, read_run_file
from factory.scale import scale_advice
from factory.stats import compute_stats, format_stats
from factory.store import RunStore
from factory.templates import PromptTemplate, template_path
from factory.validate import Limits
from reports.dataset import render_dataset

app = typer.Typer(
    help="Make training data: render unique prompts, send them to an LLM, keep the answers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

Lang = Annotated[str, typer.Option("--lang", help=f"One of: {', '.join(LANGUAGES)}.")]
Count = Annotated[int, typer.Option("--n", help="How many prompts.")]
Start = Annotated[int, typer.Option(help="Index of the first prompt (to continue a sequence).")]
Seed = Annotated[int, typer.Option(help="Seed of the prompt order; same seed, same prompts.")]
TemplateOpt = Annotated[
    Path | None, typer.Option("--template", help="Your own Jinja template instead of ours.")
]
VocabOpt = Annotated[
    Path | None, typer.Option(help="Folder of word lists (default vocab_lists/<lang>/).")
]
VarOpt = Annotated[
    list[str] | None, typer.Option("--var", help="Fix a template variable: --var turns=8.")
]


MinWords = Annotated[int, typer.Option(help="Reject stories shorter than this (words).")]
MaxWords = Annotated[int, typer.Option(help="Reject stories longer than this (words).")]
MinScript = Annotated[
    float, typer.Option(help="Least share of letters in the language's script (0-1).")
]
MinCmi = Annotated[float, typer.Option(help="Hinglish: least Code-Mixing Index (0-50).")]
Threshold = Annotated[
    float, typer.Option(help="Jaccard similarity above which stories are near-duplicates.")
]
License = Annotated[str, typer.Option("--license", help="License id for the dataset card.")]


def _limits(min_words: int, max_words: int, min_script_share: float, min_cmi: float) -> Limits:
    if not 0 <= min_script_share <= 1:
        raise KahaniError(f"--min-script-share must be between 0 and 1, got {min_script_share}")
    return Limits(
        min_words=min_words,
        max_words=max_words,
        min_script_share=min_script_share,
        min_cmi=min_cmi,
    )


def _prompt_set(
    lang: str, template: Path | None, vocab_dir: Path | None, seed: int, var: list[str] | None
) -> PromptSet:
    language = get_language(lang)
    path = template or template_path(TEMPLATES_DIR, language.kind, language.name)
    return PromptSet(
        language,
        PromptTemplate(path),
        vocab_dir or VOCAB_DIR / language.name,
        seed=seed,
        overrides=parse_overrides(var or []),
    )


@app.command()
def prompts(
    lang: Lang,
    n: Count = 10,
    start: Start = 0,
    seed: Seed = 0,
    template: TemplateOpt = None,
    vocab_dir: VocabOpt = None,
    var: VarOpt = None,
    out: Annotated[Path | None, typer.Option(help="Write JSONL here instead of stdout.")] = None,
) -> None:
    """Print prompts as JSONL (id, index, variables, messages), one per line.

    Example: factory prompts --lang bangla --n 5
    """
    prompt_set = _prompt_set(lang, template, vocab_dir, seed, var)
    prompt_set.check_count(n, start)
    lines = (p.model_dump_json() + "\n" for p in prompt_set.take(n, start))
    if out is None:
        sys.stdout.writelines(lines)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as f:
            f.writelines(lines)
    except OSError as err:
        raise KahaniError(f"cannot write {out}: {err.strerror}") from None
    print(f"wrote {n:,} prompts to {out}", file=sys.stderr)


@app.command()
def generate(
    lang: Annotated[
        str | None, typer.Option("--lang", help=f"One of: {', '.join(LANGUAGES)}.")
    ] = None,
    n: Annotated[int | None, typer.Option("--n", help="How many prompts (default 100).")] = None,
    start: Annotated[int | None, typer.Option(help="Index of the first prompt.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the prompt order.")] = None,
    name: Annotated[
        str | None, typer.Option(help="Run name (default <lang>-<model>-seed<seed>).")
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option(
            help="openai, openai-batch, g4f or local (default: openai when a "
            "key or --base-url is given, else local)."
        ),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model name, as the provider knows it.")] = None,
    base_url: Annotated[
        str | None,
        typer.Option(help="Any OpenAI-compatible server, e.g. http://localhost:8000/v1."),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help="API key (default: $OPENAI_API_KEY); never written to disk.")
    ] = None,
    temperature: Annotated[float | None, typer.Option()] = None,
    top_p: Annotated[float | None, typer.Option()] = None,
    max_tokens: Annotated[
        int | None, typer.Option(help="Cap on tokens per answer (default 1024).")
    ] = None,
    gen_seed: Annotated[
        int | None, typer.Option(help="Sampling seed sent to the provider.")
    ] = None,
    json_mode: Annotated[
        bool | None, typer.Option("--json-mode/--no-json-mode", help="Ask for a JSON object.")
    ] = None,
    rpm: Annotated[int | None, typer.Option(help="Requests-per-minute limit.")] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens-per-minute limit.")] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Requests in flight at most (default 32).")
    ] = None,
    max_attempts: Annotated[
        int | None, typer.Option(help="Attempts per prompt before it fails (default 6).")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Seconds per request (default 120).")
    ] = None,
    batch_poll_seconds: Annotated[
        float | None, typer.Option(help="Batch API: seconds between status checks (default 30).")
    ] = None,
    template: TemplateOpt = None,
    vocab_dir: VocabOpt = None,
    var: VarOpt = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Run file (TOML or YAML) with any of these settings."),
    ] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue the run in this folder.")] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where run folders go.")] = Path("runs"),
    prices: Annotated[Path, typer.Option(help="Price table (TOML).")] = PRICES_FILE,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count requests, tokens and cost.")
    ] = False,
    retry_rejected: Annotated[
        bool, typer.Option("--retry-rejected", help="Ask again for answers the checks rejected.")
    ] = False,
    export: Annotated[
        bool, typer.Option("--export/--no-export", help="Write runs/<name>/dataset/ at the end.")
    ] = True,
    min_words: MinWords = 60,
    max_words: MaxWords = 800,
    min_script_share: MinScript = 0.95,
    min_cmi: MinCmi = 5.0,
    dedup_threshold: Threshold = 0.8,
    license_id: License = "cc-by-4.0",
) -> None:
    """Send n unique prompts to an LLM and keep every answer in runs/<name>/.

    Each answer is checked as it arrives; at the end the run is cleaned (validated and
    deduplicated) and exported to runs/<name>/dataset/ (see `factory clean`).

    Runs are resumable: the same command again (or --resume runs/<name>) continues where
    the last one stopped, and an answer already paid for is never requested again.

    Example: factory generate --lang hindi --n 1000 --model gpt-4o-mini --dry-run
    """
    if dry_run and provider is None:
        provider = "openai"  # a dry run estimates API spend, with or without a key
    flags = run_flags(
        lang=lang,
        n=n,
        start=start,
        seed=seed,
        name=name,
        provider=provider,
        model=model,
        base_url=base_url,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        gen_seed=gen_seed,
        json_mode=json_mode,
        rpm=rpm,
        tpm=tpm,
        concurrency=concurrency,
        max_attempts=max_attempts,
        timeout=timeout,
        batch_poll_seconds=batch_poll_seconds,
        template=template,
        vocab_dir=vocab_dir,
        var=parse_overrides(var) if var else None,
    )
    key = api_key_from(api_key)
    run_file = read_run_file(config) if config else None
    run_config, run_dir = resolve(flags, run_file, resume, runs_dir, key)
    price_table = load_prices(prices)
    if dry_run:
        prompt_set = prompt_set_for(run_config)
        prompt_set.check_count(run_config.n, run_config.start)
        est = estimate_run(
            prompt_set,
            run_config.n,
            run_config.start,
            run_config.model,
            run_config.max_tokens,
            price_table,
        )
        print(
            format_estimate(est, prompt_set, run_config.model, run_config.max_tokens, price_table)
        )
        return
    cleaning = Cleaning(
        _limits(min_words, max_words, min_script_share, min_cmi),
        dedup_threshold,
        export,
        license_id,
    )
    raise typer.Exit(run_generate(run_config, run_dir, key, price_table, cleaning, retry_rejected))


@app.command()
def clean(
    source: Annotated[
        Path, typer.Argument(help="A run folder, or a .jsonl/.parquet file or dataset folder.")
    ],
    lang: Annotated[
        str | None, typer.Option("--lang", help="Language of a file (run folders know theirs).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="For a file: the run folder to create (runs/<file>).")
    ] = None,
    column: Annotated[
        str | None, typer.Option(help="For a file: the column with the text or messages.")
    ] = None,
    min_words: MinWords = 60,
    max_words: MaxWords = 800,
    min_script_share: MinScript = 0.95,
    min_cmi: MinCmi = 5.0,
    dedup_threshold: Threshold = 0.8,
    prices: Annotated[Path, typer.Option(help="Price table (TOML).")] = PRICES_FILE,
    executor: Annotated[
        str | None,
        typer.Option(help="Clean on datatrove: local, slurm or ray (pip install -e '.[scale]')."),
    ] = None,
    tasks: Annotated[int, typer.Option(help="--executor: tasks the input is split into.")] = 1,
    workers: Annotated[int | None, typer.Option(help="--executor: tasks at once.")] = None,
    mem_gb: Annotated[float, typer.Option(help="slurm, ray: memory per task (GB).")] = 2.0,
    slurm_partition: Annotated[str | None, typer.Option(help="slurm: partition.")] = None,
    slurm_time: Annotated[str, typer.Option(help="slurm: time limit per task.")] = "24:00:00",
    ray_address: Annotated[
        str | None, typer.Option(help="ray: cluster address (default: start one here).")
    ] = None,
    work: Annotated[
        Path | None, typer.Option(help="--executor: work folder (default: RUN/scale-work).")
    ] = None,
) -> None:
    """Validate and deduplicate answers; every rejection is kept with a reason code.

    With --executor the same checks and deduplication run as datatrove pipelines over a run
    folder or files (a glob in quotes), with memory bounded per task.

    Examples: factory clean runs/hindi-gpt-4o-mini-seed0
              factory clean stories.jsonl --lang hindi --out runs/my-stories
              factory clean 'data/*.parquet' --lang hindi --executor local --tasks 8
    """
    limits = _limits(min_words, max_words, min_script_share, min_cmi)
    if executor is not None:
        from factory.scale.pipeline import ScaleOptions, clean_at_scale

        options = ScaleOptions.from_flags(
            executor=executor,
            tasks=tasks,
            workers=workers,
            mem_gb=mem_gb,
            slurm_partition=slurm_partition,
            slurm_time=slurm_time,
            ray_address=ray_address,
            work=work,
        )
        result = clean_at_scale(str(source), lang, out, column, limits, dedup_threshold, options)
        print(result.summary())
        if result.finished:
            _print_stats_and_check(result.run_dir, prices)
        return
    if glob.has_magic(str(source)):
        raise KahaniError(f"{source}: a glob is read by the distributed path; add --executor local")
    run_dir = source
    if not (source / "config.json").is_file():
        if lang is None:
            raise KahaniError(f"{source} is not a run folder; give --lang to clean it as data")
        run_dir = out or Path("runs") / f"{source.stem}-clean"
        imported, unreadable = import_file(source, get_language(lang), run_dir, column)
        print(
            f"imported {imported:,} rows from {source} into {run_dir}"
            + (f" ({unreadable:,} unreadable lines, kept as rejects)" if unreadable else "")
        )
    config = load_config(run_dir)
    store = RunStore(run_dir / "store.sqlite")
    try:
        if advice := scale_advice(store.counts().done):
            print(advice)
        counts = clean_store(store.db, Cleaner.for_run(config, limits), dedup_threshold)
        print(format_stats(compute_stats(store.db, config, load_prices(prices))))
    finally:
        store.close()
    require_kept(counts)


def _print_stats_and_check(run_dir: Path, prices: Path) -> None:
    """After a distributed clean: the same summary, and the same failure on an empty result."""
    config = load_config(run_dir)
    store = RunStore(run_dir / "store.sqlite")
    try:
        stats = compute_stats(store.db, config, load_prices(prices))
    finally:
        store.close()
    print(format_stats(stats))
    require_kept(stats.rejects + Counter(ok=stats.kept))


@app.command("export")
def export_dataset(
    run_dir: Annotated[Path, typer.Argument(help="A cleaned run folder.")],
    out: Annotated[Path | None, typer.Option(help="Default: <run_dir>/dataset.")] = None,
    validation: Annotated[float, typer.Option(help="Share of rows for validation.")] = 0.05,
    test: Annotated[float, typer.Option(help="Share of rows for test.")] = 0.05,
    license_id: License = "cc-by-4.0",
    push_to_hub: Annotated[
        str | None, typer.Option(help="Also upload to this Hub dataset repo (needs HF_TOKEN).")
    ] = None,
    prices: Annotated[Path, typer.Option(help="Price table (TOML).")] = PRICES_FILE,
) -> None:
    """Write the kept rows as a Hugging Face dataset, parquet, JSONL and a dataset card.

    Example: factory export runs/hindi-gpt-4o-mini-seed0
    """
    if not (0 <= validation < 1 and 0 <= test < 1 and validation + test < 1):
        raise KahaniError("--validation and --test must be shares that leave rows for train")
    config = load_config(run_dir)
    target = out or run_dir / "dataset"
    store = RunStore(run_dir / "store.sqlite")
    try:
        ensure_schema(store.db)
        splits = export_run(
            store.db,
            config,
            target,
            load_prices(prices),
            SplitFractions(validation, test),
            license_id,
        )
    finally:
        store.close()
    print(f"dataset  {target} ({', '.join(f'{s} {n:,}' for s, n in splits.items())})")
    if push_to_hub:
        push(target, push_to_hub)


@app.command()
def stats(
    run_dir: Annotated[Path, typer.Argument(help="A cleaned run folder.")],
    prices: Annotated[Path, typer.Option(help="Price table (TOML).")] = PRICES_FILE,
) -> None:
    """Print kept and rejected counts (by reason), lengths, word-list coverage and cost."""
    config = load_config(run_dir)
    store = RunStore(run_dir / "store.sqlite")
    try:
        ensure_schema(store.db)
        print(format_stats(compute_stats(store.db, config, load_prices(prices))))
    finally:
        store.close()


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder from `factory generate`.")],
    out: Annotated[Path | None, typer.Option(help="Default: RUN_DIR/report.html.")] = None,
    prices: Annotated[Path, typer.Option(help="Price table (TOML).")] = PRICES_FILE,
) -> None:
    """Write the dataset report: counts, rejects with examples, lengths, coverage, duplicates,
    throughput and cost, as one HTML file that opens offline.

    Example: factory report runs/hindi-gpt-4o-mini-seed0
    """
    print(f"report   {render_dataset(run_dir, out, prices)}")


@app.command()
def status(
    run_dir: Annotated[
        Path, typer.Argument(help="A run folder, e.g. runs/hindi-gpt-4o-mini-seed0.")
    ],
    prices: Annotated[Path, typer.Option(help="Price table (TOML).")] = PRICES_FILE,
) -> None:
    """Print a run's done/failed/pending prompts, tokens and cost."""
    run_config = load_config(run_dir)
    store = RunStore(run_dir / "store.sqlite")
    try:
        print(status_text(run_dir, store, run_config, load_prices(prices)))
    finally:
        store.close()


def run_flags(**values: object) -> RunFile:
    """The flags a user typed, checked like a run file (a bad --provider is one line)."""
    try:
        return RunFile.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as err:
        problem = err.errors()[0]
        flag = "--" + str(problem["loc"][0]).replace("_", "-")
        raise KahaniError(f"{flag}: {problem['msg']}") from None


def main() -> None:
    run_cli(app)
