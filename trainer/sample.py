"""Sampling with a KV cache: the prompt costs one forward pass, each new token one step."""

import torch

from trainer.model import GPT, KVCache
from trainer.tokenizer import END, ROLES, TextTokenizer


@torch.no_grad()
def generate(
    model: GPT,
    prompt: list[int],
    n: int,
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    stop_ids: set[int],
    generator: torch.Generator,
) -> list[list[int]]:
    """`n` continuations of `prompt` (ids), each ending before a stop token or at the limit."""
    model.eval()
    device = model.embed.weight.device
    room = model.cfg.block_size - 1
    prompt = prompt[-room:]  # keep the end of a prompt longer than the context
    max_new_tokens = min(max_new_tokens, model.cfg.block_size - len(prompt))
    cache = KVCache(model.cfg, n, len(prompt) + max_new_tokens, device, model.embed.weight.dtype)
    idx = torch.tensor([prompt] * n, device=device)  # (n, T)
    out = torch.empty((n, 0), dtype=torch.long, device=device)
    done = torch.zeros(n, dtype=torch.bool, device=device)
    for _ in range(max_new_tokens):
        logits = model(idx, cache)[:, -1, :].float()  # (n, V): only the last position matters
        if temperature <= 0:
            nxt = logits.argmax(dim=-1, keepdim=True)
        else:
            logits = logits / temperature
            if top_k is not None and top_k < logits.size(-1):
                kth = torch.topk(logits, top_k).values[:, -1:]  # (n, 1)
                logits = logits.masked_fill(logits < kth, float("-inf"))
            probs = torch.softmax(logits, dim=-1)
            nxt = torch.multinomial(probs.cpu(), 1, generator=generator).to(device)  # (n, 1)
        out = torch.cat([out, nxt], dim=1)
        done |= torch.isin(nxt[:, 0], torch.tensor(sorted(stop_ids), device=device))
        if bool(done.all()):
            break
        idx = nxt
    samples = []
    for row in out.tolist():
        cut = next((i for i, t in enumerate(row) if t in stop_ids), len(row))
        samples.append(row[:cut])
    return samples


def prompt_ids(tok: TextTokenizer, prompt: str, chat: bool) -> list[int]:
    """`<bos> prompt` for stories; for chat, a user turn then an open assistant turn."""
    ids = tok.encode_batch([prompt])[0] if prompt else []
    if chat:
        return [
            tok.bos_id,
            tok.special_id(ROLES["user"]),
            *ids,
            tok.special_id(END),
            tok.special_id(ROLES["assistant"]),
        ]
    return [tok.bos_id, *ids]


def stop_tokens(tok: TextTokenizer) -> set[int]:
    stops = {tok.eos_id}
    if END in tok.hf.get_vocab():
        stops.add(tok.special_id(END))
    return stops
