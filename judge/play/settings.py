"""The playground's sampling controls: one model, so the flags' bounds are the page's."""

from pydantic import BaseModel, ConfigDict, Field

MAX_NEW_TOKENS = 4096


class PlaySettings(BaseModel):
    """Sampling settings of one answer; the flags set the page's starting values."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(
        0.8, ge=0, le=2, description="Sampling temperature, 0-2 (0 decodes greedily)."
    )
    top_k: int | None = Field(
        50, ge=1, le=1_000_000, description="Sample from the k likeliest tokens (local models)."
    )
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling, 0-1.")
    max_tokens: int = Field(
        200, ge=1, le=MAX_NEW_TOKENS, description="Cap on new tokens per answer."
    )
    seed: int | None = Field(
        None, ge=0, le=2**63 - 1, description="Sampling seed; the same seed, the same answer."
    )
