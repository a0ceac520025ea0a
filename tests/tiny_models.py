"""Tiny Hugging Face models built in the tests, for the playground and publishing tests.

The tokenizer is a character-level BPE with byte fallback, like kahani's own: letters it does
not know become `<0xXX>` byte tokens, so a model can write half a character, or bytes that
are not UTF-8 at all.

- `random_model`: a random Llama that never chooses EOS, so it writes until max new tokens.
- `scripted_model`: a Llama that writes a given token sequence whatever the prompt. Its
  layers are zeroed, so the last hidden state is the input token's embedding; embeddings are
  one-hot and `lm_head` maps token i to the token after it in the script (every other token
  starts the script). So what it writes is known exactly, down to the byte tokens.
- `classifier`: a random `LlamaForSequenceClassification` with named labels, as
  `trainer classify` writes one.
"""

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForSequenceClassification,
    PreTrainedTokenizerFast,
)

SPECIALS = ["<pad>", "<eos>", "<unk>"]
BYTES = [f"<0x{b:02X}>" for b in range(256)]
LETTERS = sorted(set("abcdefghijklmnopqrstuvwxyz.,!?'") | set("एकदिनमीराघरथाहैसे"))
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def byte_tokenizer(chat_template: str | None = CHAT_TEMPLATE) -> PreTrainedTokenizerFast:
    vocab = {token: i for i, token in enumerate([*SPECIALS, *BYTES, "▁", *LETTERS])}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], byte_fallback=True, unk_token="<unk>"))
    core.normalizer = normalizers.Replace(" ", "▁")
    core.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    tokenizer.chat_template = chat_template
    return tokenizer


def _config(tokenizer: PreTrainedTokenizerFast, hidden: int, **extra: object) -> LlamaConfig:
    settings: dict = dict(
        hidden_size=hidden,
        intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=4,
        vocab_size=len(tokenizer),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    return LlamaConfig(**(settings | extra))


def token_ids(tokenizer: PreTrainedTokenizerFast, tokens: list[str]) -> list[int]:
    return [tokenizer.convert_tokens_to_ids(t) for t in tokens]


def _markov_model(folder: Path, successors: dict[int, list[int]], start: list[int]) -> Path:
    """A Llama whose next token depends only on the last one: one of `successors[token]`
    (`start` for any other token), each as likely as the others, anything else never."""
    tokenizer = byte_tokenizer()
    size = len(tokenizer)
    hidden = -(-size // 8) * 8  # four heads of an even width
    model = LlamaForCausalLM(_config(tokenizer, hidden, tie_word_embeddings=False))
    with torch.no_grad():
        for p in model.model.layers.parameters():
            p.zero_()  # attention and MLP add nothing: the residual stream is the embedding
        model.model.embed_tokens.weight.zero_()
        model.model.embed_tokens.weight[:, :size] = torch.eye(size)
        model.lm_head.weight.zero_()
        for token in range(size):
            for after in successors.get(token, start):
                model.lm_head.weight[after, token] = 20.0  # x sqrt(hidden) after the norm
    tokenizer.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


def random_model(folder: Path, seed: int = 0, choices: int = 4) -> Path:
    """Random letters that never end: after each token, one of `choices` letters drawn for
    it, so the answer depends on the sampling seed and runs to max new tokens."""
    tokenizer = byte_tokenizer()
    letters = token_ids(tokenizer, [*LETTERS, "▁"])
    rng = torch.Generator().manual_seed(seed)
    pick = lambda: [letters[i] for i in torch.randperm(len(letters), generator=rng)[:choices]]  # noqa: E731
    return _markov_model(folder, {token: pick() for token in range(len(tokenizer))}, pick())


def scripted_model(folder: Path, script: list[str]) -> Path:
    """A model that writes the tokens of `script` (each used once), then EOS."""
    tokenizer = byte_tokenizer()
    ids = token_ids(tokenizer, script)
    assert len(set(ids)) == len(ids) and tokenizer.unk_token_id not in ids, script
    after = dict(zip(ids, [[i] for i in [*ids[1:], tokenizer.eos_token_id]], strict=True))
    return _markov_model(folder, after, [ids[0]])


def classifier(folder: Path, labels: tuple[str, ...] = ("story", "chat", "other")) -> Path:
    tokenizer = byte_tokenizer(chat_template=None)
    config = _config(
        tokenizer,
        32,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(config)
    tokenizer.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder
