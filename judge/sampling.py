"""Completions of the evaluation prompts, through factory's LLM entry point whatever the model
is: a local Hugging Face folder goes to the `local` provider (kahani's one generation loop for
Hugging Face models), an API model to its server. Requests are kept in the evaluation folder's
`sampling.sqlite`, so an interrupted sampling resumes and nothing is generated or paid twice."""

from pathlib import Path

from factory import llm
from factory.prompts import Message
from factory.providers.base import GenerationParams
from judge.models import ModelSpec
from judge.results import Completion, SamplingConfig


def sample(
    spec: ModelSpec, prompts: list[dict], cfg: SamplingConfig, endpoint: llm.Endpoint, store: Path
) -> list[Completion]:
    """`cfg.samples` completions per prompt; sample k is asked with seed `cfg.seed + k`, so
    every sample is its own request, reproducible alone."""
    local = endpoint.provider == "local"
    replies = {}
    for k in range(cfg.samples):
        params = GenerationParams(
            model=endpoint.model,
            temperature=cfg.temperature,
            top_k=cfg.top_k,
            top_p=cfg.top_p,
            max_tokens=cfg.max_tokens,
            seed=cfg.seed + k,
            # A pretrained story model continues the opening as written.
            continuation=local and cfg.kind == "story",
        )
        items = [(f"{p['id']}-s{k}", _messages(p["prompt"], cfg, local)) for p in prompts]
        label = f"sampling {spec.name}, sample {k + 1} of {cfg.samples}"
        replies.update(llm.ask(endpoint, store, items, params, label))
    return [
        Completion(
            id=f"{p['id']}-s{k}",
            prompt_id=p["id"],
            prompt=p["prompt"],
            reference=p.get("reference"),
            sample=k,
            completion=(replies[f"{p['id']}-s{k}"].text or "").strip(),
            finish_reason=replies[f"{p['id']}-s{k}"].finish_reason,
        )
        for p in prompts
        for k in range(cfg.samples)
    ]


def _messages(prompt: str, cfg: SamplingConfig, local: bool) -> list[Message]:
    if local or cfg.kind == "conversation":
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
