"""`g4f`: free chat completions through gpt4free's AsyncClient (no key; best effort).

With --base-url, g4f talks to that OpenAI-compatible server instead of its free pool.

g4f routes to whichever free backend answers, so failures are common and all of them are
treated as retryable: the runner's bounded attempts decide when a prompt has failed.
"""

from factory.errors import KahaniError
from factory.providers.base import ChatRequest, ChatResult, ProviderError, Usage


class G4FProvider:
    name = "g4f"
    max_in_flight = None

    def __init__(
        self, timeout: float, base_url: str | None = None, api_key: str | None = None
    ) -> None:
        try:
            import g4f
            from g4f.client import AsyncClient
        except ImportError:
            raise KahaniError("--provider g4f needs the g4f package: pip install g4f") from None
        if base_url:
            # g4f's OpenAI-compatible backend, pinned to one server instead of its free pool.
            self.client = AsyncClient(
                provider=g4f.Provider.OpenaiTemplate,
                api_key=api_key or "not-needed",
                base_url=base_url,
            )
        else:
            self.client = AsyncClient()
        self.timeout = timeout

    async def complete(self, request: ChatRequest) -> ChatResult:
        params = request.params
        try:
            completion = await self.client.chat.completions.create(
                model=params.model,
                messages=[m.model_dump() for m in request.messages],
                temperature=params.temperature,
                max_tokens=params.max_tokens,
                timeout=self.timeout,
            )
            choice = completion.choices[0]
            text = choice.message.content
        except Exception as err:  # g4f raises from many backends; none of them is final
            raise ProviderError(f"g4f: {type(err).__name__}: {err}"[:300], retryable=True) from None
        if not text:
            raise ProviderError("g4f: the answer has no text", retryable=True)
        usage = getattr(completion, "usage", None)
        return ChatResult(
            text=text,
            finish_reason=getattr(choice, "finish_reason", None),
            usage=Usage(
                prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            ),
            model=getattr(completion, "model", None) or params.model,
        )

    def interrupt(self) -> None:
        return None  # a request on the wire is paid for: let it land

    async def close(self) -> None:
        return None
