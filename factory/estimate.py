"""The dry run: how many requests, tokens and dollars a generate command would cost."""

from dataclasses import dataclass
from pathlib import Path

from factory.paths import TEMPLATES_DIR
from factory.pricing import PriceTable, count_chat_tokens, count_tokens
from factory.prompts import Prompt, PromptSet

# Counting every prompt of a million-prompt run takes minutes; an even sample of this
# many prompts estimates the mean to well under 1% for template-made prompts.
MAX_MEASURED = 1000


@dataclass(frozen=True)
class Estimate:
    requests: int
    measured: int  # prompts whose tokens were counted
    input_tokens: int
    output_tokens: int  # expected, from the template's example answer
    output_tokens_max: int  # every answer running to max_tokens
    encoding: str
    output_basis: str


def estimate_run(
    prompt_set: PromptSet, n: int, start: int, model: str, max_tokens: int, prices: PriceTable
) -> Estimate:
    price = prices.get(model)
    encoding = price.encoding if price else "o200k_base"
    step = max(1, n // MAX_MEASURED)
    indices = range(start, start + n, step)
    # Dataset rows that make no prompt (empty, unrenderable) are not sent: they cost nothing.
    prompts = [p for p in map(prompt_set.prompt, indices) if isinstance(p, Prompt)]
    measured = sum(count_chat_tokens(p.messages, encoding) for p in prompts)
    input_tokens = round(measured * n / len(indices))
    example = prompt_set.template.header.example_output
    if example:
        per_answer = min(count_tokens(example.strip(), encoding), max_tokens)
        basis = "the template's example answer"
    else:
        per_answer, basis = max_tokens, "max_tokens (the template has no example answer)"
    return Estimate(
        requests=n,
        measured=len(indices),
        input_tokens=input_tokens,
        output_tokens=per_answer * n,
        output_tokens_max=max_tokens * n,
        encoding=encoding,
        output_basis=basis,
    )


def format_estimate(
    est: Estimate, prompt_set: PromptSet, model: str, max_tokens: int, prices: PriceTable
) -> str:
    n = est.requests
    sample = "all prompts" if est.measured == n else f"{est.measured:,} of {n:,} prompts, scaled"
    lines = [
        "dry run: nothing was sent",
        f"language       {prompt_set.language.name} ({_shown(prompt_set.template.path)})",
        f"requests       {n:,} of {prompt_set.describe_capacity()}",
        f"model          {model} (tokens counted with {est.encoding})",
        f"input tokens   {est.input_tokens:,} ({est.input_tokens / n:,.0f} per request; {sample})",
        f"output tokens  {est.output_tokens:,} expected ({est.output_tokens / n:,.0f} per request, "
        f"from {est.output_basis}); at most {est.output_tokens_max:,} with max_tokens={max_tokens}",
    ]
    price = prices.get(model)
    if price is None:
        lines.append(f"cost           unknown: {model} is not in the price table; add it there")
    else:
        standard = price.cost(est.input_tokens, est.output_tokens)
        batch = price.cost(est.input_tokens, est.output_tokens, batch=True)
        worst = price.cost(est.input_tokens, est.output_tokens_max)
        lines.append(
            f"cost           ${standard:,.2f} standard, ${batch:,.2f} with the Batch API "
            f"(at most ${worst:,.2f}; prices as of {prices.as_of})"
        )
    return "\n".join(lines)


def _shown(path: Path) -> Path:
    """A shipped template as `templates/...`, wherever kahani is installed; a user's own as
    given."""
    resolved, shipped = path.resolve(), TEMPLATES_DIR.resolve()
    return (
        Path("templates") / resolved.relative_to(shipped)
        if resolved.is_relative_to(shipped)
        else path
    )
