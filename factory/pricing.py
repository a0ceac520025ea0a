"""Token counts and prices: `prices.toml` is the table, bpe-openai counts tokens offline."""

import tomllib
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from factory.errors import KahaniError, first_problem
from factory.prompts import Message
from factory.store import Usage

# Chat requests cost a few tokens beyond their text: each message is wrapped in role
# markers, and the reply is primed with an assistant header (OpenAI's cookbook counts).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3


class ModelPrice(BaseModel):
    """USD per one million tokens."""

    model_config = ConfigDict(extra="forbid")

    encoding: str = "o200k_base"
    input: float
    output: float
    batch_input: float
    batch_output: float
    # Fine-tuning: USD per million training tokens (the file's tokens times the epochs);
    # None where the model cannot be fine-tuned or the table does not say.
    training: float | None = None

    def cost(self, input_tokens: int, output_tokens: int, batch: bool = False) -> float:
        if batch:
            return (input_tokens * self.batch_input + output_tokens * self.batch_output) / 1e6
        return (input_tokens * self.input + output_tokens * self.output) / 1e6

    def cost_of(self, usage: Usage) -> float:
        """What a run's tokens cost: standard requests and Batch API answers at their prices."""
        return self.cost(usage.prompt_tokens, usage.completion_tokens) + self.cost(
            usage.batch_prompt_tokens, usage.batch_completion_tokens, batch=True
        )


class PriceTable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: str
    models: dict[str, ModelPrice]

    def get(self, model: str) -> ModelPrice | None:
        """The price of a model, also for dated snapshots (gpt-4o-mini-2024-07-18)."""
        candidates = [name for name in self.models if model == name or model.startswith(name + "-")]
        return self.models[max(candidates, key=len)] if candidates else None


def load_prices(path: Path) -> PriceTable:
    try:
        return PriceTable.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise KahaniError(f"price table {path} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise KahaniError(f"price table {path} is not valid TOML: {err}") from None
    except ValidationError as err:
        raise KahaniError(f"price table {path}: {first_problem(err)}") from None


@cache
def _encoding(name: str):
    import bpe_openai  # most of a second to import: only commands that count tokens pay it

    return bpe_openai.get_encoding(name)


def count_tokens(text: str, encoding: str = "o200k_base") -> int:
    return len(_encoding(encoding).encode(text))


def count_chat_tokens(messages: list[Message], encoding: str = "o200k_base") -> int:
    """Prompt tokens a chat completion request is billed for."""
    text_tokens = sum(count_tokens(m.content, encoding) + TOKENS_PER_MESSAGE for m in messages)
    return text_tokens + TOKENS_PER_REPLY
