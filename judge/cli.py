"""`judge`: how good is a model? Samples, an LLM judge with sanity controls, offline metrics.

Two endpoints can be in play, each with its own key and server: the scored model
(`--base-url`, `--api-key`, `--rpm`) and the judge (`--judge-base-url`, `--judge-api-key`,
`--judge-rpm`). A key is only ever sent to the server it was given for.
"""

from pathlib import Path
from typing import Annotated

import typer

from factory.errors import KahaniError, run_cli
from factory.flags import given, option
from factory.languages import LANGUAGES
from factory.settings import checked
from judge.play.settings import PlaySettings
from judge.score import ScoreSettings

app = typer.Typer(
    help="Score small language models: samples, an LLM judge, offline metrics.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
J = ScoreSettings
API_KEYS = (
    "Keys: --api-key goes only to --base-url, --judge-api-key only to --judge-base-url; "
    "$OPENAI_API_KEY only to OpenAI's API (or $OPENAI_BASE_URL)."
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"kahani {version('kahani')}")
        raise typer.Exit()


@app.callback()
def overview(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = None,
) -> None:
    """Score small language models: samples, an LLM judge, offline metrics."""


def _endpoint(
    role: str,
    provider: str,
    model: str,
    base_url: str | None,
    api_key: str | None,
    rpm: int | None,
    batch: bool = False,
    batch_size: int | None = None,
    poll_seconds: float | None = None,
):
    """An endpoint with its own key; a missing one is named for the role that needs it."""
    from pydantic import SecretStr

    from factory.llm import Endpoint, api_key_for

    key = api_key_for(base_url, api_key)
    flags = (
        ("--judge-api-key", "--judge-base-url")
        if role == "the judge"
        else (
            "--api-key",
            "--base-url",
        )
    )
    if provider == "openai" and not key and not base_url:
        raise KahaniError(
            f"{role} {provider}:{model} needs {flags[0]} (or $OPENAI_API_KEY) or {flags[1]} "
            "of an OpenAI-compatible server"
        )
    return Endpoint(
        provider="openai-batch" if batch else provider,
        model=model,
        base_url=base_url,
        api_key=SecretStr(key) if key else None,
        rpm=rpm,
        **given(batch_size=batch_size, batch_poll_seconds=poll_seconds),
    )


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
    n: Annotated[int | None, option(J, "n")] = None,
    samples: Annotated[int | None, option(J, "samples")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Evaluation folder (default runs/eval-<model>).")
    ] = None,
    max_tokens: Annotated[int | None, option(J, "max_tokens")] = None,
    temperature: Annotated[float | None, option(J, "temperature")] = None,
    top_k: Annotated[int | None, option(J, "top_k")] = None,
    top_p: Annotated[float | None, option(J, "top_p")] = None,
    seed: Annotated[int | None, option(J, "seed")] = None,
    batch_size: Annotated[int | None, option(J, "batch_size")] = None,
    base_url: Annotated[
        str | None, typer.Option(help="For provider:model: its OpenAI-compatible server.")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help=f"For provider:model: its key. {API_KEYS}")
    ] = None,
    rpm: Annotated[
        int | None, typer.Option(min=1, help="For provider:model: its requests-per-minute limit.")
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
        str | None, typer.Option(help=f"The judge's key; never written to disk. {API_KEYS}")
    ] = None,
    judge_rpm: Annotated[
        int | None, typer.Option(min=1, help="The judge's requests-per-minute limit.")
    ] = None,
    judge_batch: Annotated[
        bool,
        typer.Option(
            "--judge-batch",
            help="Judge through the Batch API: half price, answers within 24 hours; run the "
            "same command again to collect them.",
        ),
    ] = False,
    batch_poll_seconds: Annotated[
        float | None, typer.Option(min=0.01, help="--judge-batch: seconds between status checks.")
    ] = None,
    controls: Annotated[int | None, option(J, "controls")] = None,
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
    from factory.languages import get_language
    from judge.models import API_PROVIDERS, resolve_model
    from judge.prompts_io import load_prompts
    from judge.report import evaluation_report
    from judge.report_text import format_summary
    from judge.score import evaluate

    settings = ScoreSettings.model_validate(
        checked(
            J,
            given(
                n=n,
                samples=samples,
                max_tokens=max_tokens,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                seed=seed,
                batch_size=batch_size,
                controls=controls,
            ),
            "flags",
        )
    )
    language = get_language(lang)
    spec = resolve_model(model)
    prompt_set = load_prompts(language.name, prompts, settings.n)
    judge_endpoint = None
    if judge:
        provider, sep, judge_model = judge.partition(":")
        if not sep or provider not in API_PROVIDERS or not judge_model:
            raise KahaniError(f"--judge expects provider:model, e.g. openai:gpt-4o; got {judge!r}")
        if judge_batch and provider != "openai":
            raise KahaniError("--judge-batch needs an openai:... judge (the Batch API is OpenAI's)")
        judge_endpoint = _endpoint(
            "the judge",
            provider,
            judge_model,
            judge_base_url,
            judge_api_key,
            judge_rpm,
            batch=judge_batch,
            poll_seconds=batch_poll_seconds,
        )
    elif judge_batch:
        raise KahaniError("--judge-batch needs --judge provider:model")
    if spec.hf_dir is not None:
        sampler = _endpoint(
            "the model",
            "local",
            str(spec.hf_dir),
            None,
            None,
            None,
            batch_size=settings.batch_size,
        )
    else:
        sampler = _endpoint(
            "the scored model",
            spec.provider or "openai",
            spec.model or "",
            base_url,
            api_key,
            rpm,
            batch_size=settings.batch_size,
        )
    out = out or Path("runs") / f"eval-{spec.name}"
    summary = evaluate(
        spec,
        language.name,
        prompt_set,
        out,
        settings,
        sampler,
        judge_endpoint,
        embedding_model,
        heldout,
    )
    print(format_summary(summary))
    report = evaluation_report(out)
    print(f"wrote    {out}/summary.json, scores.jsonl, completions.jsonl, {report.name}")


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="An evaluation folder from `judge score`.")],
    out: Annotated[Path | None, typer.Option(help="Default: RUN_DIR/report.html.")] = None,
) -> None:
    """Render an evaluation folder's report.html again, from its files alone.

    Example: judge report runs/eval-hindi-20M
    """
    from judge.report import evaluation_report

    print(f"report   {evaluation_report(run_dir, out)}")


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
    from judge.compare import compare as compare_runs

    print(f"report   {compare_runs(run_dirs, out)}")


P = PlaySettings


@app.command()
def play(
    models: Annotated[
        list[str],
        typer.Argument(
            help="Models side by side: trainer runs, Hugging Face folders (causal LM or sequence "
            "classifier), or provider:model."
        ),
    ],
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port; 0 picks a free one.")] = 7860,
    host: Annotated[
        str, typer.Option(help="Address to serve on; other machines reach it only if you widen it.")
    ] = "127.0.0.1",
    chat: Annotated[
        bool,
        typer.Option(
            "--chat", help="Start local models in chat mode (their chat template), not story."
        ),
    ] = False,
    base_url: Annotated[
        str | None, typer.Option(help="For provider:model: its OpenAI-compatible server.")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help=f"For provider:model: its key. {API_KEYS}")
    ] = None,
    temperature: Annotated[float | None, option(P, "temperature")] = None,
    top_k: Annotated[int | None, option(P, "top_k")] = None,
    top_p: Annotated[float | None, option(P, "top_p")] = None,
    max_tokens: Annotated[int | None, option(P, "max_tokens")] = None,
    seed: Annotated[int | None, option(P, "seed")] = None,
) -> None:
    """Try models in the browser, side by side, with answers streamed as they are written.

    Example: judge play runs/hi-tiny runs/hi-chat --chat
    """
    from judge.play.app import bind, serve
    from judge.play.backends import load_models

    flags = given(temperature=temperature, top_k=top_k, top_p=top_p, max_tokens=max_tokens)
    settings = PlaySettings.model_validate(checked(P, flags | given(seed=seed), "flags"))
    sock = bind(host, port)  # before loading: a taken port fails at once
    try:
        loaded = load_models(models, chat=chat, base_url=base_url, api_key=api_key)
        serve(loaded, settings, sock)
    finally:
        sock.close()


def main() -> None:
    run_cli(app)
