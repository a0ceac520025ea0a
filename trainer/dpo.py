"""Direct Preference Optimization: prefer the chosen answer over the rejected one, measured
against a frozen copy of the starting model.

For a pair, with log-probabilities of each answer given its prompt summed over the answer's
tokens, the implicit reward of an answer is `beta * (log p_policy - log p_reference)` and the
loss is `-log sigmoid(reward_chosen - reward_rejected)` (Rafailov et al., 2023). Reward
accuracy (how often the chosen answer earns more) and the margin are logged for training and
held-out pairs. The reference is never trained: no gradient, not in the optimizer, not in
checkpoints (a resume loads it from `--init` again).

Pairs files (.jsonl, .parquet or .csv), one pair per row, in any of these shapes:

    {"prompt": "...", "chosen": "...", "rejected": "..."}
    {"prompt": [messages], "chosen": [messages] or "...", "rejected": [messages] or "..."}
    {"chosen": [messages], "rejected": [messages]}  (shared leading turns are the prompt)
    {"prompt": "...", "completion_a": "...", "completion_b": "...", "winner": "a"|"b"|"tie"}

The last is a judge's pairwise verdict; ties teach nothing and are skipped. Text prompts
become a user turn and answers assistant turns (`--no-chat`: plain text continued by the
answer, as for story models).
"""

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from factory.errors import KahaniError
from trainer.data import Row, read_rows
from trainer.export import copy_tokenizer, export, hf_dir, load_hf
from trainer.model import GPT
from trainer.spec import DPOSettings, RunSpec, TrainConfig
from trainer.tokenizer import END, ROLES, TextTokenizer
from trainer.tracking import Tracking
from trainer.train import (
    SAMPLE_PROMPTS,
    Dist,
    autocast,
    completions,
    distributed,
    fit,
    open_run,
    saved_spec,
    train_config,
)

Messages = list[dict[str, str]]
Pair = tuple[Messages | str, str, str]  # prompt (turns or text), chosen answer, rejected answer


def _where(row: Row, path: Path) -> str:
    return f"{path}: pair {row['id']}" if row.get("id") is not None else f"{path}: a pair"


def _answer(value: Any, row: Row, path: Path, key: str) -> tuple[Messages, str]:
    """(leading turns, final assistant answer) of a `chosen`/`rejected` value."""
    if isinstance(value, str):
        return [], value
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        *lead, last = value
        if last.get("role") == "assistant" and isinstance(last.get("content"), str):
            return lead, last["content"]
    raise KahaniError(
        f"{_where(row, path)} has a '{key}' that is neither text nor messages ending in an "
        "assistant turn"
    )


def pair_of(row: Row, path: Path) -> Pair | None:
    """One row as (prompt, chosen, rejected); None for a judge's tie."""
    if "winner" in row:  # a judge's pairwise verdict
        winner = row["winner"]
        if winner == "tie":
            return None
        if winner not in ("a", "b") or not {"prompt", "completion_a", "completion_b"} <= set(row):
            raise KahaniError(
                f"{_where(row, path)}: a verdict needs prompt, completion_a, completion_b and "
                f"winner a, b or tie (got winner {winner!r})"
            )
        first, second = row["completion_a"], row["completion_b"]
        chosen, rejected = (first, second) if winner == "a" else (second, first)
        return _checked(row["prompt"], chosen, rejected, row, path)
    if not {"chosen", "rejected"} <= set(row):
        raise KahaniError(
            f"{_where(row, path)} has no 'chosen' and 'rejected' (columns: "
            f"{', '.join(sorted(row))}); give prompt, chosen and rejected, or a judge's verdicts"
        )
    lead_c, chosen = _answer(row["chosen"], row, path, "chosen")
    lead_r, rejected = _answer(row["rejected"], row, path, "rejected")
    prompt = row.get("prompt")
    if prompt is None:
        if lead_c != lead_r or not lead_c:
            raise KahaniError(
                f"{_where(row, path)} has no 'prompt' and its chosen and rejected conversations "
                "do not start with the same turns; add a 'prompt'"
            )
        prompt = lead_c
    elif isinstance(prompt, list):
        prompt = [*prompt, *lead_c]
    return _checked(prompt, chosen, rejected, row, path)


def _checked(prompt: Any, chosen: str, rejected: str, row: Row, path: Path) -> Pair:
    if chosen.strip() == rejected.strip():
        raise KahaniError(
            f"{_where(row, path)} has the same chosen and rejected answer; a pair must differ "
            "(drop it, or mark a judge's verdict as a tie)"
        )
    if not chosen.strip() or not rejected.strip():
        raise KahaniError(f"{_where(row, path)} has an empty answer; both answers need text")
    return prompt, chosen, rejected


def read_pairs(path: Path, val_fraction: float) -> tuple[dict[str, list[Pair]], int]:
    """Pairs of the train and validation splits, and the number of ties skipped."""
    rows = read_rows(path, val_fraction)
    pairs: dict[str, list[Pair]] = {}
    ties = 0
    for split, split_rows in rows.items():
        pairs[split] = []
        for row in split_rows:
            pair = pair_of(row, path)
            if pair is None:
                ties += 1
            else:
                pairs[split].append(pair)
    if not pairs["train"]:
        raise KahaniError(f"{path} has no pairs to learn from (every verdict is a tie)")
    return pairs, ties


def prompt_tokens(tok: TextTokenizer, prompt: Messages | str, chat: bool) -> list[int]:
    """`<bos>` and the prompt, ready for the answer: an open assistant turn in chat."""
    if isinstance(prompt, str) and not chat:
        return [tok.bos_id, *tok.encode_batch([prompt])[0]]
    turns = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    ids = [tok.bos_id]
    for turn, content in zip(turns, tok.encode_batch([t["content"] for t in turns]), strict=True):
        if turn.get("role") not in ROLES:
            raise KahaniError(f"unknown role {turn.get('role')!r} in a prompt; use {list(ROLES)}")
        ids += [tok.special_id(ROLES[turn["role"]]), *content, tok.special_id(END)]
    return [*ids, tok.special_id(ROLES["assistant"])]


class Pairs:
    """Encoded pairs; a batch of B pairs is 2B rows, the chosen answers first."""

    def __init__(self, examples: list[tuple[list[int], list[int], list[int]]], pad_id: int) -> None:
        self.examples, self.pad_id = examples, pad_id  # (prompt, chosen, rejected) ids

    def __len__(self) -> int:
        return len(self.examples)

    def collate(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (2B, T) and targets (2B, T), -100 on prompt tokens and padding."""
        rows = [(p, c) for i in indices for p, c, _ in [self.examples[i]]]
        rows += [(p, r) for i in indices for p, _, r in [self.examples[i]]]
        T = max(len(p) + len(a) for p, a in rows) - 1
        x = torch.full((len(rows), T), self.pad_id, dtype=torch.long)
        y = torch.full((len(rows), T), -100, dtype=torch.long)
        for n, (prompt, answer) in enumerate(rows):
            ids = prompt + answer
            x[n, : len(ids) - 1] = torch.tensor(ids[:-1])
            y[n, len(prompt) - 1 : len(ids) - 1] = torch.tensor(answer)  # predict the answer
        return x, y


def answer_logps(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Log-probability of each row's answer, summed over its tokens: (2B,)."""
    logits = model(x).float()  # (2B, T, V)
    losses = F.cross_entropy(logits.transpose(1, 2), y, ignore_index=-100, reduction="none")
    return -losses.sum(dim=1)


class PreferenceTuning:
    def __init__(
        self,
        tok: TextTokenizer,
        reference: GPT,
        train: Pairs,
        validation: Pairs | None,
        settings: DPOSettings,
        cfg: TrainConfig,
    ) -> None:
        self.tok, self.reference, self.settings, self.cfg = tok, reference, settings, cfg
        self.train, self.validation = train, validation
        shown = (validation or train).examples[:SAMPLE_PROMPTS]
        self.prompts = [prompt for prompt, _, _ in shown]

    def counted(self, batch: tuple[torch.Tensor, torch.Tensor]) -> int:
        return batch[0].size(0) // 2

    def tokens(self, batch: tuple[torch.Tensor, torch.Tensor]) -> int:
        return int((batch[0] != self.tok.pad_id).sum())

    def rewards(
        self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Implicit rewards of the chosen and of the rejected answers, each (B,)."""
        x, y = batch[0].to(device), batch[1].to(device)
        policy = answer_logps(model, x, y)
        with torch.no_grad():
            reference = answer_logps(self.reference, x, y)
        rewards = self.settings.beta * (policy - reference)  # (2B,)
        return rewards.chunk(2)

    def loss(
        self, net: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], device: torch.device
    ) -> tuple[torch.Tensor, dict[str, float]]:
        chosen, rejected = self.rewards(net, batch, device)
        margin = chosen - rejected
        return -F.logsigmoid(margin).sum(), _sums(chosen.detach(), rejected.detach())

    @torch.no_grad()
    def evaluate(self, model: nn.Module, d: Dist) -> dict[str, float]:
        assert self.validation is not None
        model.eval()
        mine = list(range(d.rank, min(self.cfg.eval_examples, len(self.validation)), d.world))
        totals = dict.fromkeys(("loss", *REWARDS), 0.0)
        for start in range(0, len(mine), self.cfg.batch_size):
            batch = self.validation.collate(mine[start : start + self.cfg.batch_size])
            with autocast(d.device):
                chosen, rejected = self.rewards(model, batch, d.device)
            totals["loss"] += -F.logsigmoid(chosen - rejected).sum().item()
            for k, v in _sums(chosen, rejected).items():
                totals[k] += v
        (n,) = d.sum([float(len(mine))])
        summed = d.sum(list(totals.values()))
        model.train()
        return {f"val_{k}": v / max(n, 1) for k, v in zip(totals, summed, strict=True)}

    def samples(self, model: nn.Module) -> list[dict[str, str]]:
        return completions(model, self.tok, self.prompts)

    def finish(self, model: nn.Module, run_dir: Path) -> None:
        export(model, run_dir / "tokenizer", run_dir / "hf")
        print(f"exported {run_dir / 'hf'}", flush=True)


REWARDS = ("reward_accuracy", "reward_margin", "chosen_reward", "rejected_reward")


def _sums(chosen: torch.Tensor, rejected: torch.Tensor) -> dict[str, float]:
    """Per-pair measures summed over the batch, keyed as in REWARDS."""
    margin = chosen - rejected
    return {
        "reward_accuracy": (margin > 0).sum().item(),
        "reward_margin": margin.sum().item(),
        "chosen_reward": chosen.sum().item(),
        "rejected_reward": rejected.sum().item(),
    }


def encode_pairs(
    tok: TextTokenizer, pairs: list[Pair], chat: bool, block_size: int
) -> list[tuple[list[int], list[int], list[int]]]:
    """Token ids of each pair; answers end with `<|end|>` in chat, `<eos>` as text. A pair
    longer than the context keeps at most half of it for the end of its prompt, and cuts the
    answers to what is left."""
    answers = tok.encode_batch([a for _, c, r in pairs for a in (c, r)])
    room = block_size + 1
    out = []
    for i, (prompt, _, _) in enumerate(pairs):
        as_chat = chat or not isinstance(prompt, str)
        end = tok.special_id(END) if as_chat else tok.eos_id
        ids = prompt_tokens(tok, prompt, as_chat)
        chosen, rejected = [*answers[2 * i], end], [*answers[2 * i + 1], end]
        if len(ids) + max(len(chosen), len(rejected)) > room and len(ids) > room // 2:
            ids = ids[-(room // 2) :]
        out.append((ids, chosen[: room - len(ids)], rejected[: room - len(ids)]))
    return out


def dpo(
    init: Path,
    data: Path,
    run_dir: Path,
    train_opts: dict[str, Any],
    dpo_opts: dict[str, Any],
    resume: bool = False,
    stop_at: int | None = None,
    val_fraction: float = 0.2,
    tracker: Tracking | None = None,
) -> bool:
    """Preference-tune the exported model of run `init` on the pairs in `data`."""
    from trainer.options import check, validated

    model, tok = load_hf(init)
    reference, _ = load_hf(init)
    prior = saved_spec(run_dir) if resume else None
    base = prior.dpo.model_dump() if prior and prior.dpo else {}
    settings = validated(DPOSettings, {**base, **check(DPOSettings, dpo_opts)})
    defaults = TrainConfig(
        lr=1e-4, warmup_steps=10, steps=200, batch_size=8, eval_every=50, checkpoint_every=100
    ).model_dump()
    train_cfg = train_config(prior, defaults, train_opts)
    spec = RunSpec(
        kind="dpo",
        data=str(data),
        init=str(init),
        preset="from-init",
        model=model.cfg,
        train=train_cfg,
        dpo=settings,
    )
    pairs, ties = read_pairs(data, val_fraction)
    block = model.cfg.block_size
    train_ex = Pairs(encode_pairs(tok, pairs["train"], settings.chat, block), tok.pad_id)
    val_ex = (
        Pairs(encode_pairs(tok, pairs["validation"], settings.chat, block), tok.pad_id)
        if pairs["validation"]
        else None
    )
    with distributed() as d:
        ckpt = open_run(run_dir, spec, resume, d)
        if d.main:
            copy_tokenizer(hf_dir(init), run_dir / "tokenizer")
            held_out = len(val_ex) if val_ex else 0
            print(f"pairs: {len(train_ex)} to learn from, {held_out} held out, {ties} ties skipped")
        reference.requires_grad_(False)
        reference.eval().to(d.device)
        task = PreferenceTuning(tok, reference, train_ex, val_ex, settings, train_cfg)
        return fit(run_dir, spec, model, task, ckpt, d, stop_at, tracker)
