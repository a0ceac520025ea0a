"""Supervised fine-tuning on conversations: learn to answer, not to ask.

A conversation becomes `<bos><|user|>...<|end|><|assistant|>...<|end|>...`, the same text
as the exported tokenizer's chat template. Labels are -100 (no loss) everywhere except the
assistant's words and the `<|end|>` that closes each reply, so the model learns when to stop.
"""

from pathlib import Path
from typing import Any

from factory.errors import KahaniError
from trainer.batches import Conversations
from trainer.data import column, read_rows
from trainer.export import copy_tokenizer, hf_dir, load_hf
from trainer.spec import RunSpec, TrainConfig
from trainer.tokenizer import END, ROLES, TextTokenizer
from trainer.tracking import Tracking
from trainer.train import (
    SAMPLE_PROMPTS,
    LanguageModeling,
    distributed,
    fit,
    open_run,
    saved_spec,
    train_config,
)


def encode_conversation(
    tok: TextTokenizer, messages: list[dict[str, str]], max_len: int
) -> tuple[list[int], list[int]]:
    """Ids and labels of one conversation, cut to `max_len` tokens."""
    end = tok.special_id(END)
    ids, labels = [tok.bos_id], [-100]
    contents = tok.encode_batch([m["content"] for m in messages])
    for message, content in zip(messages, contents, strict=True):
        role = message["role"]
        if role not in ROLES:
            raise KahaniError(f"unknown role {role!r} in messages; use system, user or assistant")
        ids += [tok.special_id(ROLES[role]), *content, end]
        learn = role == "assistant"
        labels += [-100, *(content if learn else [-100] * len(content)), end if learn else -100]
    return ids[:max_len], labels[:max_len]


def conversations(
    rows: list[dict[str, Any]], tok: TextTokenizer, max_len: int, path: Path
) -> Conversations:
    """Tokenized conversations that still hold an assistant token after truncation."""
    examples = [encode_conversation(tok, m, max_len) for m in column(rows, "messages", path)]
    kept = [(ids, labels) for ids, labels in examples if any(t != -100 for t in labels[1:])]
    if rows and not kept:
        raise KahaniError(
            f"no conversation in {path} has an assistant reply; SFT learns from replies"
        )
    return Conversations(kept, tok.pad_id)


def chat_prompts(examples: Conversations) -> list[list[int]]:
    """Each conversation up to its first assistant reply: prompts for checkpoint samples."""
    prompts = []
    for ids, labels in examples.examples[:SAMPLE_PROMPTS]:
        first = next(i for i, t in enumerate(labels) if t != -100)
        prompts.append(ids[:first])
    return prompts


def sft(
    init: Path,
    data: Path,
    run_dir: Path,
    train_opts: dict[str, Any],
    resume: bool = False,
    stop_at: int | None = None,
    val_fraction: float = 0.05,
    tracker: Tracking | None = None,
) -> bool:
    """Fine-tune the exported model of run `init` on the `messages` of `data`."""
    model, tok = load_hf(init)
    prior = saved_spec(run_dir) if resume else None
    defaults = TrainConfig(lr=3e-4, warmup_steps=20, steps=500, batch_size=8).model_dump()
    train_cfg = train_config(prior, defaults, train_opts)
    spec = RunSpec(
        kind="sft",
        data=str(data),
        init=str(init),
        preset="from-init",
        model=model.cfg,
        train=train_cfg,
    )
    rows = read_rows(data, val_fraction)
    block = model.cfg.block_size + 1  # inputs and targets are the sequence shifted by one
    train_ex = conversations(rows["train"], tok, block, data)
    val_ex = conversations(rows["validation"], tok, block, data) if rows["validation"] else None
    with distributed() as d:
        ckpt = open_run(run_dir, spec, resume, d)
        if d.main:
            copy_tokenizer(hf_dir(init), run_dir / "tokenizer")
        prompts = chat_prompts(val_ex or train_ex)
        task = LanguageModeling(tok, train_ex, val_ex, train_cfg, prompts, d.device)
        return fit(run_dir, spec, model, task, ckpt, d, stop_at, tracker)
