"""`openai`: chat completions through the official AsyncOpenAI client, at any base URL."""

import openai

from factory.errors import KahaniError
from factory.providers.base import ChatRequest, ChatResult, ProviderError, Usage

RETRYABLE_STATUS = {408, 409, 429}


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

    def __init__(self, api_key: str, base_url: str | None, timeout: float) -> None:
        # max_retries=0: retries, backoff and rate limits are the runner's job, so that
        # every attempt is counted and bounded in one place.
        self.client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0
        )

    async def complete(self, request: ChatRequest) -> ChatResult:
        params = request.params
        extra = {}
        if params.json_mode:
            extra["response_format"] = {"type": "json_object"}
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
            raise KahaniError(f"the provider refused the API key ({err.status_code})") from None
        except openai.NotFoundError as err:
            raise KahaniError(
                f"the provider does not know this model or URL: {err.message}"
            ) from None
        except openai.APIStatusError as err:
            status = err.status_code
            headers = {k.lower(): v for k, v in err.response.headers.items()}
            raise ProviderError(
                f"HTTP {status}: {err.message}"[:300],
                retryable=status in RETRYABLE_STATUS or status >= 500,
                status=status,
                retry_after=retry_after_seconds(headers),
                headers=headers,
            ) from None
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

    async def close(self) -> None:
        await self.client.close()
