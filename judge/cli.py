"""`judge`: how good is a model? Samples, an LLM judge with sanity controls, offline metrics,
pairwise comparisons with ratings.

Endpoints each have their own key and server: the scored model (`--base-url`, `--api-key`,
`--rpm`) and each judge (`--judge`, matched by position with `--judge-base-url` and
`--judge-api-key`). A key is only ever sent to the server it was given for.
"""

from pathlib import Path
from typing import Annotated

import typer

from factory.errors import KahaniError, run_cli
from factory.flags import Version, given, option
from factory.languages import LANGUAGES
from factory.settings import checked
from judge.play.settings import PlaySettings
from judge.settings import PairwiseSettings, ScoreSettings

app = typer.Typer(
    help="Score small language models: samples, an LLM judge, offline metrics.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
J = ScoreSettings
P = PairwiseSettings
PL = PlaySettings
API_KEYS = (
    "Keys: --api-key goes only to --base-url, --judge-api-key only to its judge's "
    "--judge-base-url; $OPENAI_API_KEY only to OpenAI's API (or $OPENAI_BASE_URL)."
)
JUDGE_HELP = (
    "A judge, provider:model (e.g. openai:gpt-4o); repeat for a panel of judges, whose "
    "agreement is reported."
)
JUDGE_URL_HELP = (
    "The judge's OpenAI-compatible server: once for every judge, or once per --judge in "
    "the same order."
)
JUDGE_KEY_HELP = (
    "The judge's key, never written to disk: once when every judge uses one server, else "
    "once per --judge in the same order, so each key goes only to its own judge's server. "
    + API_KEYS
)


@app.callback()
def overview(
    version: Version = None,
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


def _judges(
    judges: list[str],
    base_urls: list[str],
    api_keys: list[str],
    rpm: int | None,
    batch: bool = False,
    poll_seconds: float | None = None,
) -> list:
    """One endpoint per --judge. A base URL or key given once applies to every judge (a key
    only when every judge uses the same server); otherwise one per judge, by position."""
    from judge.models import API_PROVIDERS

    if not judges:
        if batch:
            raise KahaniError("--judge-batch needs --judge provider:model")
        if base_urls or api_keys:
            flag = "--judge-base-url" if base_urls else "--judge-api-key"
            raise KahaniError(f"{flag} was given without --judge provider:model")
        return []
    for flag, values in (("--judge-base-url", base_urls), ("--judge-api-key", api_keys)):
        if len(values) not in (0, 1, len(judges)):
            raise KahaniError(
                f"{flag} was given {len(values)} times for {len(judges)} --judge: give it "
                "once for every judge, or once per --judge in the same order"
            )
    if len(api_keys) == 1 < len(judges) and len(set(base_urls)) > 1:
        raise KahaniError(
            "one --judge-api-key for judges on different servers: give one per --judge, in "
            "the same order as --judge-base-url, so each key goes only to its own server"
        )
    seen = set()
    endpoints = []
    for index, spec in enumerate(judges):
        provider, sep, model = spec.partition(":")
        if not sep or provider not in API_PROVIDERS or not model:
            raise KahaniError(f"--judge expects provider:model, e.g. openai:gpt-4o; got {spec!r}")
        if spec in seen:
            raise KahaniError(
                f"--judge {spec} is given twice; to judge every item several times use --repeat"
            )
        seen.add(spec)
        if batch and provider != "openai":
            raise KahaniError("--judge-batch needs openai:... judges (the Batch API is OpenAI's)")
        endpoints.append(
            _endpoint(
                "the judge",
                provider,
                model,
                base_urls[index if len(base_urls) > 1 else 0] if base_urls else None,
                api_keys[index if len(api_keys) > 1 else 0] if api_keys else None,
                rpm,
                batch=batch,
                poll_seconds=poll_seconds,
            )
        )
    return endpoints


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
        list[str] | None,
        typer.Option(help=f"{JUDGE_HELP} Without one, metrics only."),
    ] = None,
    judge_base_url: Annotated[list[str] | None, typer.Option(help=JUDGE_URL_HELP)] = None,
    judge_api_key: Annotated[list[str] | None, typer.Option(help=JUDGE_KEY_HELP)] = None,
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
    repeat: Annotated[int | None, option(J, "repeat")] = None,
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
    A panel: --judge openai:gpt-4o --judge openai:gpt-4o-mini (agreement in the summary).
    """
    from factory.languages import get_language
    from judge.models import resolve_model
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
                repeat=repeat,
            ),
            "flags",
        )
    )
    language = get_language(lang)
    spec = resolve_model(model)
    prompt_set = load_prompts(language.name, prompts, settings.n)
    judges = _judges(
        judge or [],
        judge_base_url or [],
        judge_api_key or [],
        judge_rpm,
        batch=judge_batch,
        poll_seconds=batch_poll_seconds,
    )
    if settings.repeat > 1 and not judges:
        raise KahaniError("--repeat needs --judge provider:model")
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
        judges,
        embedding_model,
        heldout,
    )
    print(format_summary(summary))
    report = evaluation_report(out)
    print(f"wrote    {out}/summary.json, scores.jsonl, completions.jsonl, {report.name}")


@app.command()
def report(
    run_dir: Annotated[
        Path,
        typer.Argument(
            help="An evaluation folder from `judge score`, or a folder from "
            "`judge compare-pairwise`."
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="Default: RUN_DIR/report.html (RUN_DIR/leaderboard.html)."),
    ] = None,
) -> None:
    """Render a folder's report.html (or leaderboard.html) again, from its files alone.

    Example: judge report runs/eval-hindi-20M
    """
    from judge.report import evaluation_report, leaderboard_report

    if (run_dir / "pairwise.json").is_file():
        print(f"report   {leaderboard_report(run_dir, out)}")
    else:
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


@app.command("compare-pairwise")
def compare_pairwise(
    eval_dirs: Annotated[
        list[Path],
        typer.Argument(help="Two or more evaluation folders from `judge score`, same prompts."),
    ],
    judge: Annotated[list[str], typer.Option(help=JUDGE_HELP)],
    judge_base_url: Annotated[list[str] | None, typer.Option(help=JUDGE_URL_HELP)] = None,
    judge_api_key: Annotated[list[str] | None, typer.Option(help=JUDGE_KEY_HELP)] = None,
    judge_rpm: Annotated[
        int | None, typer.Option(min=1, help="Each judge's requests-per-minute limit.")
    ] = None,
    controls: Annotated[int | None, option(P, "controls")] = None,
    out: Annotated[
        Path, typer.Option(help="Folder for pairwise.json, pairs.jsonl and leaderboard.html.")
    ] = Path("runs/pairwise"),
) -> None:
    """Judge models against each other: every pair of completions of the same prompt, in
    both orders; win rates, length-controlled win rates and Bradley-Terry ratings with
    intervals; a leaderboard page.

    Example: judge compare-pairwise runs/eval-a runs/eval-b runs/eval-c --judge openai:gpt-4o
    """
    from judge.pairwise_run import judge_pairwise, write_result
    from judge.report import leaderboard_report
    from judge.report_text import format_pairwise

    settings = PairwiseSettings.model_validate(checked(P, given(controls=controls), "flags"))
    endpoints = _judges(judge, judge_base_url or [], judge_api_key or [], judge_rpm)
    result = judge_pairwise(
        eval_dirs,
        None,
        endpoints,
        out / "pairwise.sqlite",
        retries=settings.retries,
        controls=settings.controls,
    )
    write_result(result, out)
    print(format_pairwise(result.summary()))
    report = leaderboard_report(out)
    print(f"wrote    {out}/pairwise.json, pairs.jsonl, {report.name}")


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
    temperature: Annotated[float | None, option(PL, "temperature")] = None,
    top_k: Annotated[int | None, option(PL, "top_k")] = None,
    top_p: Annotated[float | None, option(PL, "top_p")] = None,
    max_tokens: Annotated[int | None, option(PL, "max_tokens")] = None,
    seed: Annotated[int | None, option(PL, "seed")] = None,
) -> None:
    """Try models in the browser, side by side, with answers streamed as they are written.

    Example: judge play runs/hi-tiny runs/hi-chat --chat
    """
    from judge.play.app import bind, serve
    from judge.play.backends import load_models

    flags = given(temperature=temperature, top_k=top_k, top_p=top_p, max_tokens=max_tokens)
    settings = PlaySettings.model_validate(checked(PL, flags | given(seed=seed), "flags"))
    sock = bind(host, port)  # before loading: a taken port fails at once
    try:
        loaded = load_models(models, chat=chat, base_url=base_url, api_key=api_key)
        serve(loaded, settings, sock)
    finally:
        sock.close()


def main() -> None:
    run_cli(app)
