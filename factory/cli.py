"""`factory`: prompts from templates and word lists, then generations from LLMs."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from factory.errors import KahaniError, run_cli
from factory.estimate import estimate_run, format_estimate
from factory.languages import LANGUAGES, get_language
from factory.paths import PRICES_FILE, TEMPLATES_DIR, VOCAB_DIR
from factory.pricing import load_prices
from factory.prompts import PromptSet, parse_overrides
from factory.templates import PromptTemplate, template_path

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
    lang: Lang,
    n: Count = 100,
    start: Start = 0,
    seed: Seed = 0,
    model: Annotated[
        str, typer.Option(help="Model name, as the provider knows it.")
    ] = "gpt-4o-mini",
    max_tokens: Annotated[int, typer.Option(help="Cap on tokens per answer.")] = 1024,
    template: TemplateOpt = None,
    vocab_dir: VocabOpt = None,
    var: VarOpt = None,
    prices: Annotated[Path, typer.Option(help="Price table (TOML).")] = PRICES_FILE,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count requests, tokens and cost.")
    ] = False,
) -> None:
    """Generate answers for n unique prompts.

    Example: factory generate --lang hindi --n 1000 --model gpt-4o-mini --dry-run
    """
    prompt_set = _prompt_set(lang, template, vocab_dir, seed, var)
    prompt_set.check_count(n, start)
    if max_tokens < 1:
        raise KahaniError(f"--max-tokens must be at least 1, got {max_tokens}")
    price_table = load_prices(prices)
    if not dry_run:
        raise KahaniError("sending requests is not built yet; run with --dry-run for an estimate")
    est = estimate_run(prompt_set, n, start, model, max_tokens, price_table)
    print(format_estimate(est, prompt_set, model, max_tokens, price_table))


def main() -> None:
    run_cli(app)
