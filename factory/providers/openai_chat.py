"""`openai`: chat completions through the official AsyncOpenAI client, at any base URL."""

import httpx
import openai

from factory.errors import KahaniError
from factory.providers.base import ChatRequest, ChatResult, ProviderError, Usage
from factory.settings import LLMLimits

RETRYABLE_STATUS = {408, 409, 429}
NO_KEY = "not-needed"  # what the client sends to a server that was given no key


def retry_after_seconds(headers: dict[str, str]) -> float | None:
    """`retry-after-ms` (OpenAI) wins over `retry-after` (seconds, the HTTP standard)."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return float(value) / scale
            except ValueError:
                continue
    return None


class OpenAIChatProvider:
    name = "openai"
    max_in_flight = None

    def __init__(self, api_key: str, base_url: str | None, limits: LLMLimits) -> None:
        # max_retries=0: retries, backoff and rate limits are the engine's job, so that
        # every attempt is counted and bounded in one place. The connection pool is as
        # large as the engine may go: httpx's default of 100 would cap it silently.
        pool = httpx.Limits(
            max_connections=limits.max_concurrency,
            max_keepalive_connections=limits.max_concurrency,
        )
        self.server = base_url or "OpenAI's API"
        self.keyless = api_key == NO_KEY
        self.client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=limits.timeout,
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(limits=pool, timeout=limits.timeout),
        )

    async def complete(self, request: ChatRequest) -> ChatResult:
        params = request.params
        if params.continuation:
            raise KahaniError("text continuation needs a local model; API models chat")
        extra: dict = {}
        if params.json_mode:
            extra["response_format"] = {"type": "json_object"}
        if params.top_k is not None:  # not OpenAI's parameter; vLLM, llama.cpp and others take it
            extra["extra_body"] = {"top_k": params.top_k}
        try:
            raw = await self.client.chat.completions.with_raw_response.create(
                model=params.model,
                messages=[m.model_dump() for m in request.messages],
                temperature=params.temperature,
                top_p=params.top_p,
                max_tokens=params.max_tokens,
                seed=params.seed,
                **extra,
            )
            headers = {k.lower(): v for k, v in raw.headers.items()}
            completion = raw.parse()
        except openai.AuthenticationError as err:
            if self.keyless:
                raise KahaniError(
                    f"{self.server} wants an API key (HTTP {err.status_code}); pass --api-key "
                    "(a key in $OPENAI_API_KEY is sent only to OpenAI or $OPENAI_BASE_URL)"
                ) from None
            raise KahaniError(
                f"{self.server} refused the API key (HTTP {err.status_code})"
            ) from None
        except openai.NotFoundError as err:
            raise KahaniError(
                f"the provider does not know this model or URL: {err.message}"
            ) from None
        except openai.RateLimitError as err:
            if err.code == "insufficient_quota":  # no credit left: no retry will help
                raise KahaniError(
                    f"{self.server} says the account has no quota left ({err.message[:200]}); "
                    "nothing is lost: add credit and run the same command again"
                ) from None
            raise self._failure(err) from None
        except openai.APIStatusError as err:
            raise self._failure(err) from None
        except openai.APITimeoutError:
            raise ProviderError("timed out", retryable=True) from None
        except openai.APIConnectionError as err:
            raise ProviderError(
                f"connection failed: {err.__cause__ or err}", retryable=True
            ) from None
        except ValueError as err:  # a 200 whose body is not the JSON it claims to be
            raise ProviderError(f"malformed response: {err}"[:300], retryable=True) from None

        if not completion.choices or completion.choices[0].message.content is None:
            raise ProviderError("the answer has no text", retryable=True, headers=headers)
        choice = completion.choices[0]
        usage = completion.usage
        return ChatResult(
            text=choice.message.content,
            finish_reason=choice.finish_reason,
            usage=Usage(
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else 0,
            ),
            model=completion.model or params.model,
            headers=headers,
        )

    @staticmethod
    def _failure(err: openai.APIStatusError) -> ProviderError:
        status = err.status_code
        headers = {k.lower(): v for k, v in err.response.headers.items()}
        return ProviderError(
            f"HTTP {status}: {err.message}"[:300],
            retryable=status in RETRYABLE_STATUS or status >= 500,
            status=status,
            retry_after=retry_after_seconds(headers),
            headers=headers,
        )

    def interrupt(self) -> None:
        return None  # a request on the wire is paid for: let it land

    async def close(self) -> None:
        await self.client.close()
