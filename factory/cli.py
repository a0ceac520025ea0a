"""`factory`: prompts from templates and word lists, then generations from LLMs.

Options come from the settings fields (`factory/settings.py`): the same names, defaults and
bounds for flags, run files and config.json. Each command imports its machinery when it
runs, so `factory --help` starts at once.
"""

import glob
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from factory.errors import KahaniError, run_cli
from factory.finetune_cli import app as finetune_app
from factory.flags import Version, given, option
from factory.languages import LANGUAGES
from factory.scale.options import ScaleOptions
from factory.settings import CleanSettings, GradeSettings, RunSettings, checked

app = typer.Typer(
    help="Make training data: render unique prompts, send them to an LLM, keep the answers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(finetune_app, name="finetune")

S = RunSettings
G = GradeSettings
X = ScaleOptions
_DECONTAMINATE_HELP = (
    CleanSettings.model_fields["decontaminate"].description
    + " Repeat for several files. [default: the shipped evaluation sets only]"
)
Lang = Annotated[str | None, option(S, "lang", help=f"One of: {', '.join(LANGUAGES)}.")]
Count = Annotated[int | None, option(S, "n")]
Start = Annotated[int | None, option(S, "start")]
Seed = Annotated[int | None, option(S, "seed")]
TemplateOpt = Annotated[Path | None, option(S, "template")]
VocabOpt = Annotated[Path | None, option(S, "vocab_dir")]
VarOpt = Annotated[list[str] | None, typer.Option("--var", help=S.model_fields["var"].description)]
MinWords = Annotated[int | None, option(CleanSettings, "min_words")]
MaxWords = Annotated[int | None, option(CleanSettings, "max_words")]
MinScript = Annotated[float | None, option(CleanSettings, "min_script_share")]
MinCmi = Annotated[float | None, option(CleanSettings, "min_cmi")]
Threshold = Annotated[float | None, option(CleanSettings, "dedup_threshold")]
License = Annotated[str | None, option(S, "license")]
Prices = Annotated[
    Path | None, typer.Option(help="Price table (TOML) [default: the shipped factory/prices.toml].")
]
RunDir = Annotated[Path, typer.Argument(help="A run folder, e.g. runs/hindi-gpt-4o-mini-seed0.")]


def _prices(path: Path | None):
    from factory.paths import PRICES_FILE
    from factory.pricing import load_prices

    return load_prices(path or PRICES_FILE)


def _overrides(var: list[str] | None) -> dict[str, str] | None:
    from factory.prompts import parse_overrides

    return parse_overrides(var) if var else None


@app.callback()
def overview(
    version: Version = None,
) -> None:
    """Make training data: render unique prompts, send them to an LLM, keep the answers."""


@app.command()
def prompts(
    lang: Lang = None,
    n: Annotated[int | None, option(S, "n", help="How many prompts. [default: 10]")] = None,
    start: Start = None,
    seed: Seed = None,
    template: TemplateOpt = None,
    vocab_dir: VocabOpt = None,
    var: VarOpt = None,
    diversify: Annotated[bool, typer.Option(help=S.model_fields["diversify"].description)] = False,
    out: Annotated[Path | None, typer.Option(help="Write JSONL here instead of stdout.")] = None,
) -> None:
    """Print prompts as JSONL (id, index, variables, messages), one per line.

    Example: factory prompts --lang bangla --n 5
    """
    from factory.languages import get_language
    from factory.prompts import prompt_set

    values = checked(S, given(lang=lang, n=n, start=start, seed=seed), "flags")
    if not lang:
        raise KahaniError("--lang is required")
    count, first = values.get("n", 10), values.get("start", 0)
    prompts = prompt_set(
        get_language(lang), template, vocab_dir, values.get("seed", 0), _overrides(var), diversify
    )
    prompts.check_count(count, first)
    lines = (p.model_dump_json() + "\n" for p in prompts.take(count, first))
    if out is None:
        sys.stdout.writelines(lines)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as f:
            f.writelines(lines)
    except OSError as err:
        raise KahaniError(f"cannot write {out}: {err.strerror}") from None
    print(f"wrote {count:,} prompts to {out}", file=sys.stderr)


@app.command()
def generate(
    lang: Lang = None,
    n: Count = None,
    start: Start = None,
    seed: Seed = None,
    name: Annotated[str | None, option(S, "name")] = None,
    provider: Annotated[str | None, option(S, "provider")] = None,
    model: Annotated[str | None, option(S, "model")] = None,
    base_url: Annotated[str | None, option(S, "base_url")] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            help="API key, sent only to --base-url (or OpenAI). Default: $OPENAI_API_KEY, "
            "which goes only to OpenAI's API or $OPENAI_BASE_URL. Never written to disk."
        ),
    ] = None,
    temperature: Annotated[float | None, option(S, "temperature")] = None,
    top_p: Annotated[float | None, option(S, "top_p")] = None,
    max_tokens: Annotated[int | None, option(S, "max_tokens")] = None,
    gen_seed: Annotated[int | None, option(S, "gen_seed")] = None,
    json_mode: Annotated[bool | None, option(S, "json_mode", "--json-mode/--no-json-mode")] = None,
    rpm: Annotated[int | None, option(S, "rpm")] = None,
    tpm: Annotated[int | None, option(S, "tpm")] = None,
    max_concurrency: Annotated[int | None, option(S, "max_concurrency")] = None,
    max_attempts: Annotated[int | None, option(S, "max_attempts")] = None,
    timeout: Annotated[float | None, option(S, "timeout")] = None,
    batch_poll_seconds: Annotated[float | None, option(S, "batch_poll_seconds")] = None,
    threads: Annotated[int | None, option(S, "threads")] = None,
    batch_size: Annotated[int | None, option(S, "batch_size")] = None,
    template: TemplateOpt = None,
    vocab_dir: VocabOpt = None,
    var: VarOpt = None,
    diversify: Annotated[bool | None, option(S, "diversify", "--diversify/--no-diversify")] = None,
    from_dataset: Annotated[Path | None, option(S, "from_dataset", metavar="PATH")] = None,
    column_map: Annotated[
        list[str] | None,
        typer.Option(
            "--column-map", help=S.model_fields["column_map"].description, metavar="VAR=COLUMN"
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Run file (TOML or YAML) with any of these settings."),
    ] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue the run in this folder.")] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where run folders go.")] = Path("runs"),
    prices: Prices = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count requests, tokens and cost.")
    ] = False,
    retry_rejected: Annotated[
        bool, typer.Option("--retry-rejected", help="Ask again for answers the checks rejected.")
    ] = False,
    export: Annotated[bool | None, option(S, "export", "--export/--no-export")] = None,
    min_words: MinWords = None,
    max_words: MaxWords = None,
    min_script_share: MinScript = None,
    min_cmi: MinCmi = None,
    dedup_threshold: Threshold = None,
    license_id: License = None,
) -> None:
    """Send n unique prompts to an LLM and keep every answer in runs/<name>/.

    Each answer is checked as it arrives; at the end the run is cleaned (validated and
    deduplicated) and exported to runs/<name>/dataset/ (see `factory clean`).

    Runs are resumable: the same command again (or --resume runs/<name>) continues where
    the last one stopped, and an answer already paid for is never requested again.

    Prompts come from the template's word lists (--diversify also draws a name, a setting,
    a style and a narrative device), or one per row of a dataset (--from-dataset with a
    --template whose variables are its columns, e.g. translate/hindi.j2).

    Examples: factory generate --lang hindi --n 1000 --model gpt-4o-mini --dry-run
              factory generate --lang hindi --from-dataset stories.jsonl --column-map story=text \
                  --template translate/hindi.j2
    """
    from factory import llm
    from factory.estimate import estimate_run, format_estimate
    from factory.generate import prompt_set_for, resolve, run_generate
    from factory.prompts import parse_overrides
    from factory.settings import read_run_file

    flags = checked(
        S,
        given(
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
            max_concurrency=max_concurrency,
            max_attempts=max_attempts,
            timeout=timeout,
            batch_poll_seconds=batch_poll_seconds,
            threads=threads,
            batch_size=batch_size,
            template=template,
            vocab_dir=vocab_dir,
            var=_overrides(var),
            diversify=diversify,
            from_dataset=from_dataset,
            column_map=parse_overrides(column_map, "--column-map") if column_map else None,
            export=export,
            min_words=min_words,
            max_words=max_words,
            min_script_share=min_script_share,
            min_cmi=min_cmi,
            dedup_threshold=dedup_threshold,
            license=license_id,
        ),
        "flags",
    )
    settings: dict[str, Any] = {**(read_run_file(config) if config else {}), **flags}
    base = settings.get("base_url")
    key = llm.api_key_for(base, api_key)
    run_config, run_dir = resolve(settings, resume, runs_dir, key is not None, dry_run)
    price_table = _prices(prices)
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
    raise typer.Exit(run_generate(run_config, run_dir, key, price_table, retry_rejected))


@app.command()
def clean(
    source: Annotated[
        Path, typer.Argument(help="A run folder, or a .jsonl/.parquet/.csv file or dataset folder.")
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
    min_words: MinWords = None,
    max_words: MaxWords = None,
    min_script_share: MinScript = None,
    min_cmi: MinCmi = None,
    dedup_threshold: Threshold = None,
    decontaminate: Annotated[
        list[Path] | None,
        option(CleanSettings, "decontaminate", metavar="FILE", help=_DECONTAMINATE_HELP),
    ] = None,
    decontaminate_shipped: Annotated[
        bool | None,
        option(
            CleanSettings,
            "decontaminate_shipped",
            "--decontaminate-shipped/--no-decontaminate-shipped",
        ),
    ] = None,
    contamination_ngram: Annotated[int | None, option(CleanSettings, "contamination_ngram")] = None,
    judge: Annotated[str | None, option(G, "judge")] = None,
    judge_base_url: Annotated[str | None, option(G, "judge_base_url")] = None,
    judge_api_key: Annotated[
        str | None,
        typer.Option(help="The judge's key, sent only to --judge-base-url; never written."),
    ] = None,
    judge_batch: Annotated[
        bool,
        typer.Option(
            "--judge-batch",
            help="Grade through the Batch API (half price, within 24 hours; run the same "
            "command again to collect).",
        ),
    ] = False,
    rubric: Annotated[Path | None, option(G, "rubric")] = None,
    min_score: Annotated[float | None, option(G, "min_score")] = None,
    batch_poll_seconds: Annotated[float | None, option(S, "batch_poll_seconds")] = None,
    prices: Prices = None,
    executor: Annotated[str | None, option(X, "executor")] = None,
    tasks: Annotated[int | None, option(X, "tasks")] = None,
    workers: Annotated[int | None, option(X, "workers")] = None,
    mem_gb: Annotated[float | None, option(X, "mem_gb")] = None,
    slurm_partition: Annotated[str | None, option(X, "slurm_partition")] = None,
    slurm_time: Annotated[str | None, option(X, "slurm_time")] = None,
    ray_address: Annotated[str | None, option(X, "ray_address")] = None,
    work: Annotated[Path | None, option(X, "work")] = None,
) -> None:
    """Validate, decontaminate and deduplicate answers, and optionally grade them with a
    judge; every rejection is kept with a reason code.

    Thresholds default to those the run was generated with. With --executor the same
    checks and deduplication run as datatrove pipelines over a run folder or files (a glob
    in quotes), with memory bounded per task.

    Examples: factory clean runs/hindi-gpt-4o-mini-seed0
              factory clean stories.jsonl --lang hindi --out runs/my-stories
              factory clean runs/hindi-gpt-4o-mini-seed0 --judge openai:gpt-4o-mini --min-score 6
              factory clean 'data/*.parquet' --lang hindi --out runs/data --executor local --tasks 8
    """
    from factory.clean import Cleaner, clean_store, require_kept, settings_for
    from factory.decontaminate import check_eval_files, decontaminator_for
    from factory.grading import grading_for
    from factory.importer import import_file
    from factory.languages import get_language
    from factory.scale import scale_advice
    from factory.settings import load_config
    from factory.stats import compute_stats, format_stats
    from factory.store import RunStore

    flags = given(
        min_words=min_words,
        max_words=max_words,
        min_script_share=min_script_share,
        min_cmi=min_cmi,
        dedup_threshold=dedup_threshold,
        decontaminate=decontaminate or None,
        decontaminate_shipped=decontaminate_shipped,
        contamination_ngram=contamination_ngram,
    )
    checked(CleanSettings, flags, "flags")
    checked(G, given(judge=judge, rubric=rubric, min_score=min_score), "flags")
    checked(S, given(batch_poll_seconds=batch_poll_seconds), "flags")
    scale = given(
        executor=executor,
        tasks=tasks,
        workers=workers,
        mem_gb=mem_gb,
        slurm_partition=slurm_partition,
        slurm_time=slurm_time,
        ray_address=ray_address,
        work=work,
    )
    if scale:
        if judge or min_score is not None or rubric is not None or judge_batch:
            raise KahaniError("--judge grades in one process: leave out --executor to grade")
        _clean_at_scale(source, lang, out, column, flags, scale, prices)
        return
    if glob.has_magic(str(source)):
        raise KahaniError(f"{source}: a glob is read by the distributed path; add --executor local")
    run_dir = source
    is_run = (source / "config.json").is_file()
    if not is_run:
        if not source.exists():
            raise KahaniError(f"{source} does not exist")
        if lang is None:
            raise KahaniError(f"{source} is not a run folder; give --lang to clean it as data")
        run_dir = out or Path("runs") / f"{source.stem}-clean"
    language = get_language(lang if not is_run else load_config(run_dir).lang)
    check_eval_files(decontaminate or [], language.name)
    grading = None
    if judge:  # checked before anything is imported or written
        grading = grading_for(
            judge,
            judge_base_url,
            judge_api_key,
            judge_batch,
            rubric,
            min_score,
            language,
            run_dir,
            batch_poll_seconds,
        )
    elif min_score is not None or rubric is not None or judge_batch:
        raise KahaniError("--min-score, --rubric and --judge-batch need --judge provider:model")
    if not is_run:
        imported, unreadable = import_file(source, language, run_dir, column)
        print(
            f"imported {imported:,} rows from {source} into {run_dir}"
            + (f" ({unreadable:,} unreadable lines, kept as rejects)" if unreadable else "")
        )
    config = load_config(run_dir)
    settings = settings_for(config, flags)
    store = RunStore.open(run_dir / "store.sqlite", write=True)
    try:
        if advice := scale_advice(store.answer_count()):
            print(advice)
        counts = clean_store(
            store,
            Cleaner.for_run(config, settings),
            settings.dedup_threshold,
            decontaminator=decontaminator_for(settings, config.lang),
            grading=grading,
        )
        print(format_stats(compute_stats(store, config, _prices(prices))))
    finally:
        store.close()
    require_kept(counts)


def _clean_at_scale(
    source: Path,
    lang: str | None,
    out: Path | None,
    column: str | None,
    flags: dict[str, Any],
    scale: dict[str, Any],
    prices: Path | None,
) -> None:
    """`factory clean --executor ...`: the same verdicts, summary and failure on an empty
    result as the in-process clean, from datatrove pipelines."""
    from collections import Counter

    from factory.clean import require_kept
    from factory.settings import load_config
    from factory.stats import compute_stats, format_stats
    from factory.store import RunStore

    if "executor" not in scale:
        flag = "--" + next(iter(scale)).replace("_", "-")
        raise KahaniError(f"{flag} is for the distributed clean: add --executor local|slurm|ray")
    options = ScaleOptions.model_validate(checked(ScaleOptions, scale, "flags"))
    from factory.scale.pipeline import clean_at_scale

    result = clean_at_scale(str(source), lang, out, column, flags, options)
    print(result.summary())
    if not result.finished:  # submitted to Slurm: the run is written when the jobs end
        return
    config = load_config(result.run_dir)
    store = RunStore.open(result.run_dir / "store.sqlite")
    try:
        stats = compute_stats(store, config, _prices(prices))
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
    license_id: License = None,
    push_to_hub: Annotated[
        str | None,
        typer.Option(help="Also upload to this Hub dataset repo, private (needs HF_TOKEN)."),
    ] = None,
    prices: Prices = None,
) -> None:
    """Write the kept rows as a Hugging Face dataset, parquet, JSONL and a dataset card.

    Example: factory export runs/hindi-gpt-4o-mini-seed0
    """
    from factory.export import SplitFractions, export_run
    from factory.hub import push_dataset
    from factory.settings import load_config
    from factory.store import RunStore

    if not (0 <= validation < 1 and 0 <= test < 1 and validation + test < 1):
        raise KahaniError("--validation and --test must be shares that leave rows for train")
    config = load_config(run_dir)
    target = out or run_dir / "dataset"
    store = RunStore.open(run_dir / "store.sqlite")
    try:
        splits = export_run(
            store,
            config,
            target,
            _prices(prices),
            SplitFractions(validation, test),
            license_id or config.license,
        )
    finally:
        store.close()
    print(f"dataset  {target} ({', '.join(f'{s} {n:,}' for s, n in splits.items())})")
    if push_to_hub:
        push_dataset(target, push_to_hub)


@app.command()
def stats(run_dir: RunDir, prices: Prices = None) -> None:
    """Print kept and rejected counts (by reason), lengths, word-list coverage and cost."""
    from factory.settings import load_config
    from factory.stats import compute_stats, format_stats
    from factory.store import RunStore

    config = load_config(run_dir)
    store = RunStore.open(run_dir / "store.sqlite")
    try:
        print(format_stats(compute_stats(store, config, _prices(prices))))
    finally:
        store.close()


@app.command()
def report(
    run_dir: RunDir,
    out: Annotated[Path | None, typer.Option(help="Default: RUN_DIR/report.html.")] = None,
    prices: Prices = None,
) -> None:
    """Write the dataset report: counts, rejects with examples, lengths, coverage, duplicates,
    throughput and cost, as one HTML file that opens offline.

    Example: factory report runs/hindi-gpt-4o-mini-seed0
    """
    from factory.report import dataset_report

    print(f"report   {dataset_report(run_dir, out or run_dir / 'report.html', _prices(prices))}")


@app.command()
def status(run_dir: RunDir, prices: Prices = None) -> None:
    """Print a run's done/failed/pending prompts, tokens and cost."""
    from factory.generate import status_text
    from factory.settings import load_config
    from factory.store import RunStore

    run_config = load_config(run_dir)
    store = RunStore.open(run_dir / "store.sqlite")
    try:
        print(status_text(run_dir, store, run_config, _prices(prices)))
    finally:
        store.close()


def main() -> None:
    run_cli(app)
