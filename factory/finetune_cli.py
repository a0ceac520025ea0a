"""`factory finetune`: OpenAI fine-tuning jobs from kahani datasets.

    factory finetune create DATASET --model gpt-4o-mini-2024-07-18 [--epochs N ...]
    factory finetune status|events|cancel JOB_OR_DATASET
    factory finetune list

DATASET is a `factory export` folder (its `openai/train.jsonl`, and with `--validation` its
`openai/validation.jsonl`) or a .jsonl file of `{"messages": [...]}` lines. A job is also
named by its dataset (its record in `<dataset>/finetune/`), so no id needs copying.
"""

from pathlib import Path
from typing import Annotated

import typer

from factory.errors import KahaniError
from factory.finetune_record import Hyperparameters
from factory.flags import given, option

app = typer.Typer(
    help="Fine-tune OpenAI models on kahani datasets: check, estimate, upload, create, follow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

H = Hyperparameters
KEYS = "$OPENAI_API_KEY goes only to OpenAI's API (or $OPENAI_BASE_URL)."
BaseUrl = Annotated[
    str | None, typer.Option(help="An OpenAI-compatible server with the fine-tuning API.")
]
ApiKey = Annotated[str | None, typer.Option(help=f"Its key; never written to disk. {KEYS}")]
Target = Annotated[
    str, typer.Argument(help="A job id (ftjob-...), or a dataset whose record names the job.")
]
Name = Annotated[
    str | None, typer.Option(help="Which of the dataset's records (default: its only one).")
]


def _api(base_url: str | None, api_key: str | None):
    from factory.finetune import FineTuningAPI
    from factory.llm import api_key_for

    key = api_key_for(base_url, api_key)
    if not key and not base_url:
        raise KahaniError(
            "factory finetune needs OPENAI_API_KEY (or --api-key), or --base-url of a server "
            "with the fine-tuning API"
        )
    return FineTuningAPI(base_url, key)


def _language(dataset: Path) -> str | None:
    """The language of a dataset exported from a run folder (its config.json says)."""
    from factory.settings import load_config

    run = (dataset if dataset.is_dir() else dataset.parent).parent
    if not (run / "config.json").is_file():
        return None
    try:
        return load_config(run).lang
    except KahaniError:
        return None


@app.command()
def create(
    dataset: Annotated[
        Path, typer.Argument(help="A `factory export` folder, or a .jsonl of {messages} lines.")
    ],
    model: Annotated[
        str, typer.Option(help="The model to fine-tune, e.g. gpt-4o-mini-2024-07-18.")
    ],
    epochs: Annotated[int | None, option(H, "n_epochs", "--epochs")] = None,
    lr_multiplier: Annotated[
        float | None, option(H, "learning_rate_multiplier", "--lr-multiplier")
    ] = None,
    batch_size: Annotated[int | None, option(H, "batch_size")] = None,
    suffix: Annotated[
        str | None,
        typer.Option(help="Up to 64 characters in the model's name: ft:MODEL:ORG:SUFFIX:ID."),
    ] = None,
    validation: Annotated[
        bool,
        typer.Option(
            "--validation", help="Also upload the dataset's validation split, for val loss."
        ),
    ] = False,
    name: Annotated[
        str | None,
        typer.Option(help="The record's name (default MODEL or MODEL-SUFFIX); one job each."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and estimate the cost; send nothing.")
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the job until it ends, printing its events.")
    ] = False,
    poll_seconds: Annotated[
        float, typer.Option(min=0.01, help="--wait: seconds between status checks.")
    ] = 30.0,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    prices: Annotated[
        Path | None, typer.Option(help="Price table (TOML) [default: factory/prices.toml].")
    ] = None,
) -> None:
    """Check a dataset, estimate the cost, upload it and create the fine-tuning job.

    The files are checked against the fine-tuning format rules before anything is sent; each
    id is recorded in DATASET/finetune/NAME.json the moment it exists, so running the same
    command again continues that job: nothing is uploaded or created twice.

    Example: factory finetune create runs/hinglish/dataset --model gpt-4o-mini-2024-07-18
    """
    from factory import finetune
    from factory import finetune_record as records
    from factory.paths import PRICES_FILE
    from factory.pricing import load_prices
    from factory.settings import checked

    if suffix is not None and not 0 < len(suffix) <= 64:
        raise KahaniError(f"--suffix must be 1 to 64 characters, got {len(suffix)}")
    hyper = H.model_validate(
        checked(
            H,
            given(n_epochs=epochs, learning_rate_multiplier=lr_multiplier, batch_size=batch_size),
            "flags",
        )
    )
    limit = finetune.token_limit(model)
    table = load_prices(prices or PRICES_FILE)
    price = table.get(model)
    encoding = price.encoding if price else "o200k_base"
    train, valid = finetune.dataset_files(dataset, validation)
    checks = [finetune.check_file(train, limit, encoding, finetune.MIN_EXAMPLES)]
    if valid is not None:
        checks.append(finetune.check_file(valid, limit, encoding, 1))
    for check in checks:
        print(
            f"checked  {check.path}: {check.examples:,} examples, {sum(check.tokens):,} tokens "
            f"(longest {max(check.tokens):,} of {limit:,} allowed)"
        )
    cost = finetune.estimate(checks[0], hyper.n_epochs, price)
    chosen = f" (auto: OpenAI's usual choice for {checks[0].examples:,} examples)"
    print(f"epochs   {cost.epochs}{chosen if cost.auto else ''}")
    if cost.cost is None:
        print(f"cost     unknown: {table.as_of} price table has no training price for {model}")
    else:
        per_million = price.training if price else 0
        print(
            f"cost     ${cost.cost:,.2f} estimated: {cost.trained:,} training tokens at "
            f"${per_million:.2f} per million (prices as of {table.as_of})"
        )
    if dry_run:
        print("dry run: nothing was sent")
        return
    api = _api(base_url, api_key)
    name = name or (f"{model}-{suffix}" if suffix else model)
    if dataset.is_file():
        name = f"{dataset.stem}-{name}"
    where = records.record_path(dataset, name)
    wanted = finetune.new_record(
        name, model, suffix, hyper, base_url, _language(dataset), train, valid
    )
    existing = records.load(where)
    record = finetune.reconcile(existing, wanted, where) if existing else wanted
    records.save(where, record)
    job = finetune.submit(api, record, where, print)
    if wait:
        job = finetune.follow(api, job, poll_seconds, print)
    if wait or job.status in finetune.ENDED:
        _remember(where, job)
        _report(job, record.language, base_url)


def _remember(where: Path, job) -> None:
    """Keep the job's last known status and model name in its record."""
    from factory import finetune_record as records

    record = records.load(where)
    if record is not None and record.job_id == job.id:
        record.status, record.fine_tuned_model = job.status, job.fine_tuned_model
        records.save(where, record)


def _report(job, language: str | None, base_url: str | None) -> None:
    """Print the job; a failed or cancelled one ends as a one-line error."""
    from factory.finetune import describe

    for line in describe(job, language, base_url):
        print(line)
    if job.status == "failed":
        raise KahaniError(
            f"fine-tuning job {job.id} failed: {job.error or 'no reason given'}; fix the data "
            "and create another job with --name NEW"
        )
    if job.status == "cancelled":
        raise KahaniError(f"fine-tuning job {job.id} was cancelled")


def _resolve(target: str, name: str | None, base_url: str | None):
    """(job id, record path or None, language, base URL) for a job id or a dataset."""
    from factory import finetune_record as records

    if target.startswith("ftjob-"):
        return target, None, None, base_url
    dataset = Path(target)
    if not dataset.exists():
        raise KahaniError(f"{target} is neither a job id (ftjob-...) nor a dataset")
    paths = [records.record_path(dataset, name)] if name else records.records(dataset)
    if not paths or not paths[0].is_file():
        raise KahaniError(
            f"{dataset} has no fine-tuning record{f' named {name}' if name else ''}; "
            "create a job with `factory finetune create`"
        )
    if len(paths) > 1:
        names = ", ".join(p.stem for p in paths)
        raise KahaniError(f"{dataset} has several fine-tuning records ({names}); pick one: --name")
    record = records.load(paths[0])
    if record is None or record.job_id is None:
        raise KahaniError(
            f"{paths[0]} has no job yet; run the same `factory finetune create` to create it"
        )
    return record.job_id, paths[0], record.language, base_url or record.base_url


@app.command()
def status(target: Target, name: Name = None, base_url: BaseUrl = None, api_key: ApiKey = None):
    """Print a job's status; once it succeeded, its model and the command that evaluates it.

    Example: factory finetune status runs/hinglish/dataset
    """
    job_id, where, language, base_url = _resolve(target, name, base_url)
    job = _api(base_url, api_key).job(job_id)
    if where is not None:
        _remember(where, job)
    _report(job, language, base_url)


@app.command()
def events(
    target: Target,
    name: Name = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many, newest.")] = 20,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
):
    """Print a job's events (validation, steps with training loss, the result), oldest first."""
    job_id, _, _, base_url = _resolve(target, name, base_url)
    for line in _api(base_url, api_key).events(job_id, limit):
        print(line)


@app.command()
def cancel(target: Target, name: Name = None, base_url: BaseUrl = None, api_key: ApiKey = None):
    """Cancel a job that has not ended."""
    job_id, where, _, base_url = _resolve(target, name, base_url)
    job = _api(base_url, api_key).cancel(job_id)
    if where is not None:
        _remember(where, job)
    print(f"job      {job.id} {job.status}")


@app.command("list")
def list_jobs(
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many, newest first.")] = 20,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
):
    """List recent fine-tuning jobs: id, status, base model, fine-tuned model."""
    for job in _api(base_url, api_key).jobs(limit):
        print(f"{job.id}  {job.status:<16}  {job.model}  {job.fine_tuned_model or '-'}")
