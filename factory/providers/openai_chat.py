"""`openai`: chat completions through the official AsyncOpenAI client, at any base URL."""

import itertools
import math

import httpx
import openai

from factory.errors import KahaniError
from factory.providers.base import ChatRequest, ChatResult, ProviderError, Usage
from factory.settings import LLMLimits

RETRYABLE_STATUS = {408, 409, 429}
NO_KEY = "not-needed"
POOL = 64  # connections per HTTP client  # what the client sends to a server that was given no key


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
        self.server = base_url or "OpenAI's API"
        self.keyless = api_key == NO_KEY
        # httpx's pool scans all of its connections for every request: at 2,000 connections
        # that costs more CPU than the requests themselves. Clients of POOL connections each,
        # taken in turn, keep the scan short; together they hold as many as the engine may
        # have in flight (one pool of httpx's default 100 would cap it silently).
        pool = httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL)
        self.clients = [
            # max_retries=0: retries, backoff and rate limits are the engine's job, so that
            # every attempt is counted and bounded in one place.
            openai.AsyncOpenAI(
                api_key=api_key,
                base_url=base_url,
                timeout=limits.timeout,
                max_retries=0,
                http_client=openai.DefaultAsyncHttpxClient(limits=pool, timeout=limits.timeout),
            )
            for _ in range(math.ceil(limits.max_concurrency / POOL))
        ]
        self._turn = itertools.cycle(self.clients)

    async def complete(self, request: ChatRequest) -> ChatResult:
        params = request.params
        if params.continuation:
            raise KahaniError("text continuation needs a local model; API models chat")
        body = {
            "model": params.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        for name in ("temperature", "top_p", "max_tokens", "seed", "top_k"):
            if (value := getattr(params, name)) is not None:
                body[name] = value  # top_k: not OpenAI's; vLLM, llama.cpp and others take it
        if params.json_mode:
            body["response_format"] = {"type": "json_object"}
        try:
            # The client's generic POST: its errors, auth and connection pool, without the
            # per-request rewriting of the typed `create` (milliseconds of CPU per request).
            client = next(self._turn)
            raw = await client.post("/chat/completions", body=body, cast_to=httpx.Response)
            headers = {k.lower(): v for k, v in raw.headers.items()}
            completion = raw.json()
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

        try:
            choice = completion["choices"][0]
            text = choice["message"]["content"]
            usage = completion.get("usage") or {}
        except (KeyError, IndexError, TypeError):
            text = None
        if not isinstance(text, str):
            raise ProviderError("the answer has no text", retryable=True, headers=headers)
        return ChatResult(
            text=text,
            finish_reason=choice.get("finish_reason"),
            usage=Usage(
                prompt_tokens=usage.get("prompt_tokens") or 0,
                completion_tokens=usage.get("completion_tokens") or 0,
            ),
            model=completion.get("model") or params.model,
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
        for client in self.clients:
            await client.close()
