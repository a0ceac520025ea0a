"""Completions of the evaluation prompts: sampled in seeded batches with a KV cache
(transformers' `generate`), or asked of an API model through factory's engine."""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict

from factory.errors import KahaniError
from factory.prompts import Message
from factory.providers.base import GenerationParams
from judge.llm import Endpoint, ask
from judge.models import ModelSpec


class SamplingConfig(BaseModel):
    """Everything that decides the completions; a change means sampling again."""

    model_config = ConfigDict(extra="forbid")

    model: str
    language: str
    kind: str  # story: continue the opening; conversation: reply to the opener
    samples: int
    max_new_tokens: int
    temperature: float
    top_k: int | None
    seed: int
    prompts_sha: str


@dataclass(frozen=True)
class Completion:
    id: str  # "<prompt id>-s<sample>"
    prompt_id: str
    prompt: str
    reference: str | None
    sample: int
    completion: str
    finish_reason: str | None


def sample_local(
    spec: ModelSpec, prompts: list[dict], cfg: SamplingConfig, batch_size: int
) -> list[Completion]:
    """n samples per prompt from a Hugging Face causal LM, reproducible for a seed."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the summary says what was loaded
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec.hf_dir)
        model = AutoModelForCausalLM.from_pretrained(spec.hf_dir)
    except (OSError, ValueError) as err:
        raise KahaniError(f"cannot load {spec.hf_dir}: {str(err).splitlines()[0]}") from None
    model.eval()
    tokenizer.padding_side = "left"  # generation continues from the right end of every row
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    chat = cfg.kind == "conversation" and tokenizer.chat_template is not None
    items = [(p, k) for p in prompts for k in range(cfg.samples)]
    out = []
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        texts = [_model_input(tokenizer, p["prompt"], chat) for p, _ in batch]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=not chat)
        torch.manual_seed(cfg.seed * 1_000_003 + start)  # each batch reproducible on its own
        with torch.no_grad():
            generated = model.generate(
                **enc,
                max_new_tokens=cfg.max_new_tokens,
                do_sample=cfg.temperature > 0,
                temperature=cfg.temperature if cfg.temperature > 0 else None,
                top_k=cfg.top_k if cfg.temperature > 0 else None,
                pad_token_id=tokenizer.pad_token_id,
            )
        new_tokens = generated[:, enc["input_ids"].shape[1] :]  # (B, new)
        eos = set(_eos_ids(model, tokenizer))
        for (prompt, k), row in zip(batch, new_tokens.tolist(), strict=True):
            stop = next((i for i, t in enumerate(row) if t in eos), None)
            text = tokenizer.decode(row[:stop], skip_special_tokens=True).strip()
            finish = "stop" if stop is not None else "length"
            out.append(_completion(prompt, k, text, finish))
    return out


def sample_api(
    spec: ModelSpec, prompts: list[dict], cfg: SamplingConfig, endpoint: Endpoint, store: Path
) -> list[Completion]:
    """n samples per prompt from an API model; each sample its own seed, so its own request."""
    items = []
    for p in prompts:
        for k in range(cfg.samples):
            items.append((f"{p['id']}-s{k}", _api_messages(p["prompt"], cfg)))
    replies = {}
    for k in range(cfg.samples):  # one seed per sample index: same prompts, distinct requests
        params = GenerationParams(
            model=spec.model,
            temperature=cfg.temperature,
            max_tokens=cfg.max_new_tokens,
            seed=cfg.seed + k,
        )
        mine = [item for item in items if item[0].endswith(f"-s{k}")]
        replies.update(ask(endpoint, store, mine, params))
    out = []
    for p in prompts:
        for k in range(cfg.samples):
            reply = replies[f"{p['id']}-s{k}"]
            out.append(_completion(p, k, (reply.text or "").strip(), reply.finish_reason))
    return out


def _completion(prompt: dict, k: int, text: str, finish: str | None) -> Completion:
    return Completion(
        id=f"{prompt['id']}-s{k}",
        prompt_id=prompt["id"],
        prompt=prompt["prompt"],
        reference=prompt.get("reference"),
        sample=k,
        completion=text,
        finish_reason=finish,
    )


def _model_input(tokenizer, prompt: str, chat: bool) -> str:
    if chat:
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
    return prompt


def _api_messages(prompt: str, cfg: SamplingConfig) -> list[Message]:
    if cfg.kind == "conversation":
        return [Message(role="user", content=prompt)]
    return [
        Message(
            role="system",
            content=(
                f"Continue the children's story the user starts, in {cfg.language}, in the same "
                "script. Write only the continuation."
            ),
        ),
        Message(role="user", content=prompt),
    ]


def _eos_ids(model, tokenizer) -> list[int]:
    eos = model.generation_config.eos_token_id
    ids = [eos] if isinstance(eos, int) else list(eos or [])
    return ids + ([tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else [])


def write_completions(path: Path, cfg: SamplingConfig, completions: list[Completion]) -> None:
    """completions.jsonl, with the sampling settings beside it to know when to reuse it."""
    with path.open("w", encoding="utf-8") as f:
        for c in completions:
            f.write(json.dumps(asdict(c), ensure_ascii=False) + "\n")
    path.with_name("sampling.json").write_text(cfg.model_dump_json(indent=2), encoding="utf-8")


def read_completions(path: Path, cfg: SamplingConfig) -> list[Completion] | None:
    """The stored completions when they were sampled with exactly these settings."""
    settings = path.with_name("sampling.json")
    if not (path.is_file() and settings.is_file()):
        return None
    if SamplingConfig.model_validate_json(settings.read_text(encoding="utf-8")) != cfg:
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Completion(**json.loads(line)) for line in lines if line.strip()]
