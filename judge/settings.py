"""What `judge score` can be told: names, defaults and bounds of its options, declared once
(the CLI's options and checks come from these fields)."""

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_TOP_K = 50  # local models without --top-k: the usual setting for small models


class ScoreSettings(BaseModel):
    """What `judge score` can be told: names, defaults and bounds of its options."""

    model_config = ConfigDict(extra="forbid")

    n: int | None = Field(None, ge=1, description="Use only the first N prompts (default: all).")
    samples: int = Field(3, ge=1, le=1000, description="Completions per prompt.")
    max_tokens: int = Field(200, ge=1, le=100_000, description="Tokens per completion at most.")
    temperature: float = Field(0.8, ge=0, le=2, description="Sampling temperature, 0-2.")
    top_k: int | None = Field(
        None,
        ge=0,
        description=f"Sample among the k likeliest tokens, 0 for all (default: {DEFAULT_TOP_K} "
        "for local models; sent to API models only when given).",
    )
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling, 0-1.")
    seed: int = Field(0, description="Sample k of a prompt is drawn with seed + k.")
    batch_size: int = Field(
        16, ge=1, le=1024, description="Local models: completions generated together."
    )
    controls: int = Field(
        10, ge=0, le=100_000, description="Completions per kind of damaged control."
    )
    repeat: int = Field(
        1,
        ge=1,
        le=20,
        description="Judge every item K times, repeat k with seed k, for each judge's "
        "self-consistency; scores are the mean of the repeats.",
    )
    judge_retries: int = Field(2, ge=0, le=10)


class PairwiseSettings(BaseModel):
    """What `judge compare-pairwise` can be told: names, defaults and bounds of its options."""

    model_config = ConfigDict(extra="forbid")

    controls: int = Field(
        10,
        ge=0,
        le=100_000,
        description="Completions per kind of damage judged against their damaged copy.",
    )
    retries: int = Field(2, ge=0, le=10)
