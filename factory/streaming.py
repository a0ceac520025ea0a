"""Answers piece by piece as they are written, for people watching (`judge play`).

A local Hugging Face model streams from kahani's one generation loop (`decode` in
`providers/local.py`, whose token callback hands each token over as it is chosen); an
OpenAI-compatible server streams through the `openai` client's streaming API. Runs and
evaluations never stream: they go through `llm.answer`, which stores every answer.

Text from token ids: a character split over byte tokens (byte-fallback BPE) is held back
until its last byte arrives, so a piece never ends in half a character; bytes that never
make a valid UTF-8 character are shown as U+FFFD and counted, and the stream goes on.
"""

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from factory.errors import KahaniError
from factory.prompts import Message
from factory.providers.base import GenerationParams

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

REPLACEMENT = "\ufffd"
MAX_UTF8_BYTES = 4  # the longest UTF-8 character: hold back at most this many tokens


@dataclass(frozen=True)
class Piece:
    """Text to append to the answer."""

    text: str


@dataclass(frozen=True)
class Finish:
    """The end of an answer."""

    reason: str | None  # "stop", "length", or "stopped" when the reader went away
    tokens: int  # answer tokens (the server's count for API models, 0 when it sent none)
    seconds: float  # from the request to the last piece
    replaced: int  # U+FFFD characters in the answer: bytes that were not valid UTF-8


class Streamer(Protocol):
    name: str

    def stream(
        self, messages: list[Message], params: GenerationParams
    ) -> AsyncIterator[Piece | Finish]:
        """Pieces of the answer as they are written, then one Finish; KahaniError when the
        model or server fails. Leaving the loop early stops the generation."""
        ...

    async def close(self) -> None: ...


class Detokenizer:
    """Token ids in, text out as soon as it is whole.

    Each step decodes a short window (the last shown tokens and the new ones), so words keep
    the spaces a tokenizer writes relative to the token before, and the cost per token stays
    constant. A window that ends in U+FFFD may be a character still arriving byte by byte:
    it is held back for up to MAX_UTF8_BYTES tokens, then shown as it is."""

    def __init__(self, tokenizer: "PreTrainedTokenizerBase") -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix = 0  # window start: the tokens of the last piece shown
        self.read = 0  # tokens already shown
        self.replaced = 0

    def _text(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def add(self, token: int) -> str:
        """The text `token` completes ("" while a character is unfinished)."""
        self.ids.append(token)
        text = self._text(self.ids[self.prefix :])
        if text.endswith(REPLACEMENT) and len(self.ids) - self.read < MAX_UTF8_BYTES:
            return ""
        return self._emit(text)

    def flush(self) -> str:
        """Whatever is held back, at the end of the answer."""
        if self.read == len(self.ids):
            return ""
        return self._emit(self._text(self.ids[self.prefix :]))

    def _emit(self, text: str) -> str:
        shown = self._text(self.ids[self.prefix : self.read])
        # Byte-fallback decoders turn a whole run of byte tokens into U+FFFDs when any of it
        # is not UTF-8, so a window that starts inside such a run can undo a character
        # already shown: then the new tokens are decoded alone.
        fresh = text.startswith(shown)
        piece = text[len(shown) :] if fresh else self._text(self.ids[self.read :])
        self.prefix, self.read = self.read, len(self.ids)
        self.replaced += piece.count(REPLACEMENT)
        return piece


class LocalStreamer:
    """A Hugging Face causal LM on this machine, loaded once; one answer at a time."""

    def __init__(self, name: str, source: Path | str) -> None:
        import torch

        from factory.providers.local import load_causal_lm

        self.name = name
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.loaded = load_causal_lm(source, self.device)
        # decode() runs in a worker thread; a second answer waits for the first to end.
        self._busy = threading.Lock()

    async def stream(
        self, messages: list[Message], params: GenerationParams
    ) -> AsyncIterator[Piece | Finish]:
        from factory.providers.local import decode, prompt_ids, row_seed

        loaded, started = self.loaded, time.monotonic()
        prompt = prompt_ids(loaded.tokenizer, messages, params.continuation)
        if not prompt:
            raise KahaniError("the prompt is empty; type some text first")
        loop = asyncio.get_running_loop()
        tokens: asyncio.Queue[int | None] = asyncio.Queue()
        stop = threading.Event()

        def hand_over(token: int | None) -> None:  # from the decoding thread
            with contextlib.suppress(RuntimeError):  # the event loop closed meanwhile
                loop.call_soon_threadsafe(tokens.put_nowait, token)

        def generate() -> list[tuple[list[int], str, int] | None]:
            with self._busy:
                try:
                    return decode(
                        loaded.model,
                        [prompt],
                        params,
                        [row_seed(params.seed, "play")],
                        loaded.tokenizer.pad_token_id,
                        loaded.eos_ids,
                        stop,
                        on_token=lambda row, token: hand_over(token),
                    )
                finally:
                    hand_over(None)  # the end, whatever happened

        worker = asyncio.ensure_future(asyncio.to_thread(generate))
        text = Detokenizer(loaded.tokenizer)
        try:
            while (token := await tokens.get()) is not None:
                if piece := text.add(token):
                    yield Piece(piece)
            try:
                rows = await worker
            except Exception as err:  # a bug or a broken model: one line for the page
                raise KahaniError(f"generation failed: {type(err).__name__}: {err}") from None
            if piece := text.flush():
                yield Piece(piece)
            row = rows[0]
            reason, count = (row[1], len(row[0])) if row else ("stopped", len(text.ids))
            yield Finish(reason, count, time.monotonic() - started, text.replaced)
        finally:
            stop.set()  # the reader left early (or failed): decode stops between two tokens
            # A generation abandoned midway may still fail; its error is of no use to anyone.
            worker.add_done_callback(lambda done: done.cancelled() or done.exception())

    async def close(self) -> None:
        return None


class OpenAIStreamer:
    """A chat model behind an OpenAI-compatible server, through the client's streaming API."""

    def __init__(
        self, name: str, model: str, base_url: str | None, api_key: str | None, timeout: float
    ) -> None:
        import openai

        from factory.providers.openai_chat import NO_KEY

        self.name = name
        self.model = model
        self.server = base_url or "OpenAI's API"
        # top_k is not OpenAI's parameter (its API refuses it); vLLM, llama.cpp and others
        # take it.
        self.takes_top_k = base_url is not None and "api.openai.com" not in base_url
        self.client = openai.AsyncOpenAI(
            api_key=api_key or NO_KEY, base_url=base_url, timeout=timeout, max_retries=2
        )

    async def stream(
        self, messages: list[Message], params: GenerationParams
    ) -> AsyncIterator[Piece | Finish]:
        import openai

        if params.continuation:
            raise KahaniError(f"{self.name} is a chat model; story continuation needs a local one")
        extra: dict = {}
        if params.top_k is not None and self.takes_top_k:
            extra["extra_body"] = {"top_k": params.top_k}
        started, reason, tokens, replaced = time.monotonic(), None, 0, 0
        try:
            chunks = await self.client.chat.completions.create(
                model=self.model,
                messages=[m.model_dump() for m in messages],
                temperature=params.temperature,
                top_p=params.top_p,
                max_tokens=params.max_tokens,
                seed=params.seed,
                stream=True,
                stream_options={"include_usage": True},
                **extra,
            )
            async for chunk in chunks:
                if chunk.usage is not None:
                    tokens = chunk.usage.completion_tokens
                for choice in chunk.choices:
                    reason = choice.finish_reason or reason
                    if choice.delta.content:
                        replaced += choice.delta.content.count(REPLACEMENT)
                        yield Piece(choice.delta.content)
        except openai.APIStatusError as err:
            message = err.body.get("message") if isinstance(err.body, dict) else None
            raise KahaniError(
                f"{self.server} answered HTTP {err.status_code}: {message or err.message}"
            ) from None
        except openai.APIConnectionError as err:
            raise KahaniError(f"cannot reach {self.server}: {err.message}") from None
        yield Finish(reason, tokens, time.monotonic() - started, replaced)

    async def close(self) -> None:
        await self.client.close()
