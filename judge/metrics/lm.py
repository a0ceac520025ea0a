"""Perplexity and bits per byte of a causal language model on held-out texts.

Bits per byte (total nats / ln 2 / total UTF-8 bytes) compares models with different
tokenizers, which perplexity per token does not: a tokenizer with longer tokens has fewer,
harder predictions. Every token of a text is predicted exactly once: a BOS token (when the
tokenizer has one) gives the first token a context, and a text longer than the model's window
is scored in windows that each start with the previous window's last token. Padding never
counts. This scores a model, not samples, so it takes the model itself rather than going
through the sample registry.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class LMScores:
    nats_per_token: list[float | None]  # per text; None for a text with no token to predict
    tokens: int
    bytes: int
    nats: float

    @property
    def perplexity(self) -> float:
        return math.exp(self.nats / self.tokens) if self.tokens else math.nan

    @property
    def bits_per_byte(self) -> float:
        return self.nats / math.log(2) / self.bytes if self.bytes else math.nan


def _windows(ids: list[int], size: int) -> list[list[int]]:
    """Windows of at most `size` tokens; each after the first repeats the last token before it
    as context, so the tokens predicted across windows are ids[1:], each once."""
    if len(ids) <= size:
        return [ids]
    return [ids[start : start + size] for start in range(0, len(ids) - 1, size - 1)]


@torch.no_grad()
def lm_scores(
    model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int = 8, window: int | None = None
) -> LMScores:
    """Summed next-token negative log-likelihood of each text under `model` (a Hugging Face
    causal LM) and `tokenizer` (its tokenizer), in nats."""
    window = window or getattr(model.config, "max_position_embeddings", 1024)
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    pieces = [
        (i, w) for i, ids in enumerate(encoded) for w in _windows(bos + ids, window) if len(w) > 1
    ]
    nats, counts = [0.0] * len(texts), [0] * len(texts)
    model.eval()
    device = next(model.parameters()).device
    for start in range(0, len(pieces), batch_size):
        batch = pieces[start : start + batch_size]
        longest = max(len(w) for _, w in batch)
        ids = torch.full((len(batch), longest), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for row, (_, w) in enumerate(batch):
            ids[row, : len(w)] = torch.tensor(w)
            mask[row, : len(w)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
        target = ids[:, 1:].to(device)
        token_nats = -logprobs.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        token_nats = token_nats * mask[:, 1:].to(device)  # padding predicts nothing
        for row, (text, w) in enumerate(batch):
            nats[text] += float(token_nats[row].sum())
            counts[text] += len(w) - 1
    return LMScores(
        nats_per_token=[n / c if c else None for n, c in zip(nats, counts, strict=True)],
        tokens=sum(counts),
        bytes=sum(len(t.encode("utf-8")) for t in texts),
        nats=sum(nats),
    )
