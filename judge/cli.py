"""`judge`: how good is a model? Samples, an LLM judge with sanity controls, offline metrics."""

import os
from pathlib import Path
from typing import Annotated

import typer

from factory.errors import KahaniError, run_cli
from factory.languages import LANGUAGES, get_language
from judge.llm import Endpoint
from judge.models import API_PROVIDERS, resolve_model
from judge.prompts_io import load_prompts
from judge.report_text import format_summary
from judge.score import ScoreOptions, evaluate
from reports.compare import render_comparison
from reports.evaluation import render_evaluation

app = typer.Typer(
    help="Score small language models: samples, an LLM judge, offline metrics.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def overview() -> None:
    """Score small language models: samples, an LLM judge, offline metrics."""


def _endpoint(spec: str, base_url: str | None, api_key: str | None, rpm: int | None) -> Endpoint:
    provider, sep, model = spec.partition(":")
    if not sep or provider not in API_PROVIDERS or not model:
        raise KahaniError(f"--judge expects provider:model, e.g. openai:gpt-4o; got {spec!r}")
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if provider == "openai" and not key and not base_url:
        raise KahaniError(
            "the judge openai:... needs OPENAI_API_KEY (or --judge-api-key) or --judge-base-url"
        )
    return Endpoint(provider=provider, model=model, base_url=base_url, api_key=key, rpm=rpm)


@app.command()
def score(
    model: Annotated[
        str, typer.Argument(help="A trainer run, a Hugging Face model folder, or provider:model.")
    ],
    lang: Annotated[str, typer.Option("--lang", help=f"One of: {', '.join(LANGUAGES)}.")],
    prompts: Annotated[
        Path | None,
        typer.Option(
            help="Prompts (.txt lines or .jsonl with prompt/reference); default: the shipped set."
        ),
    ] = None,
    n_prompts: Annotated[int | None, typer.Option(help="Use only the first N prompts.")] = None,
    samples: Annotated[int, typer.Option(help="Completions per prompt.")] = 3,
    out: Annotated[
        Path | None, typer.Option(help="Evaluation folder (default runs/eval-<model>).")
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens per completion at most.")] = 200,
    temperature: Annotated[float, typer.Option()] = 0.8,
    top_k: Annotated[int, typer.Option(help="0 turns top-k off.")] = 50,
    seed: Annotated[int, typer.Option()] = 0,
    batch_size: Annotated[int, typer.Option(help="Completions generated together.")] = 16,
    base_url: Annotated[
        str | None, typer.Option(help="For provider:model: an OpenAI-compatible server.")
    ] = None,
    judge: Annotated[
        str | None,
        typer.Option(
            help="The judge, provider:model (e.g. openai:gpt-4o); without it, metrics only."
        ),
    ] = None,
    judge_base_url: Annotated[
        str | None, typer.Option(help="The judge's OpenAI-compatible server.")
    ] = None,
    judge_api_key: Annotated[
        str | None, typer.Option(help="Default: $OPENAI_API_KEY; never written to disk.")
    ] = None,
    judge_rpm: Annotated[
        int | None, typer.Option(help="The judge's requests-per-minute limit.")
    ] = None,
    controls: Annotated[int, typer.Option(help="Completions per kind of damaged control.")] = 10,
    heldout: Annotated[
        Path | None,
        typer.Option(
            help="Held-out texts (.jsonl/.parquet/dataset with `text`) for bits per byte."
        ),
    ] = None,
    embedding_model: Annotated[
        str | None,
        typer.Option(help="sentence-transformers model name or path for embedding similarity."),
    ] = None,
) -> None:
    """Sample MODEL on evaluation prompts, score the samples, write summary.json.

    Example: judge score runs/hindi-20M --lang hindi --judge openai:gpt-4o
    """
    language = get_language(lang)
    spec = resolve_model(model)
    if samples < 1 or max_new_tokens < 1 or batch_size < 1:
        raise KahaniError("--samples, --max-new-tokens and --batch-size must be at least 1")
    prompt_set = load_prompts(language.name, prompts, n_prompts)
    judge_endpoint = _endpoint(judge, judge_base_url, judge_api_key, judge_rpm) if judge else None
    sampler = None
    if spec.provider:
        sampler = _endpoint(f"{spec.provider}:{spec.model}", base_url, judge_api_key, None)
    options = ScoreOptions(
        samples=samples,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_k=top_k or None,
        seed=seed,
        batch_size=batch_size,
        controls=controls,
        embedding_model=embedding_model,
        heldout=heldout,
    )
    out = out or Path("runs") / f"eval-{spec.name}"
    summary = evaluate(spec, language.name, prompt_set, out, options, sampler, judge_endpoint)
    print(format_summary(summary))
    report = render_evaluation(out)
    print(f"wrote    {out}/summary.json, scores.jsonl, completions.jsonl, {report.name}")


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="An evaluation folder from `judge score`.")],
    out: Annotated[Path | None, typer.Option(help="Default: RUN_DIR/report.html.")] = None,
) -> None:
    """Render an evaluation folder's report.html again, from its files alone.

    Example: judge report runs/eval-hindi-20M
    """
    print(f"report   {render_evaluation(run_dir, out)}")


@app.command()
def compare(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="Two or more evaluation folders, same prompts.")
    ],
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("compare.html"),
) -> None:
    """Compare models on the prompts they share: intervals, win rates, paired bootstrap.

    Example: judge compare runs/eval-a runs/eval-b --out compare.html
    """
    print(f"report   {render_comparison(run_dirs, out)}")


def main() -> None:
    run_cli(app)
