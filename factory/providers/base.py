"""The provider interface: one chat request in, one answer out, or a classified failure."""

from typing import Protocol

from pydantic import BaseModel, ConfigDict

from factory.prompts import Message


class GenerationParams(BaseModel):
    """Sampling parameters passed through to the provider unchanged."""

    model_config = ConfigDict(extra="forbid")

    model: str
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None  # local models; sent to other servers only when set
    max_tokens: int | None = None
    seed: int | None = None
    json_mode: bool = False  # response_format={"type": "json_object"} where supported
    # Local models only: continue the last message's text as is, with no chat template
    # (scoring a pretrained story model on story openings).
    continuation: bool = False


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    custom_id: str  # the prompt id
    messages: list[Message]
    params: GenerationParams


class Usage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt_tokens: int = 0
    completion_tokens: int = 0


class ChatResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    finish_reason: str | None
    usage: Usage
    model: str
    # Rate-limit headers of the answer (x-ratelimit-*), lower-cased, for the limiter.
    headers: dict[str, str] = {}


class ProviderError(Exception):
    """A failed request. `retryable` failures are tried again after a backoff, honouring
    `retry_after` (seconds) when the provider sent one; the others fail the prompt."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.headers = headers or {}


class Provider(Protocol):
    name: str
    max_in_flight: int | None  # more concurrent requests than this only queue up

    async def complete(self, request: ChatRequest) -> ChatResult:
        """Answer one request or raise ProviderError."""
        ...

    def interrupt(self) -> None:
        """Ctrl-C: stop work that costs nothing to redo (local decoding); paid requests on
        the wire are left to land."""
        ...

    async def close(self) -> None: ...
