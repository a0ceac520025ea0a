"""Our default recipe against a GPT-2-style baseline: same data, same wall clock, bits per byte.

Both models share the tokenizer, the token shards, the width, depth and heads, and each trains
for --minutes of wall clock in this process, one after the other. Ours: the trainer's GPT
(RMSNorm, rotary, SwiGLU, tied embeddings) with AdamW (decay on 2-D weights only, betas
0.9/0.95), warmup then cosine over the time budget, gradient clipping. Baseline:
transformers' GPT2LMHeadModel with AdamW at its usual 6e-4 constant rate. Goal: ours lower.

    python bench/train_quality.py --minutes 5        # about 10 minutes in all
"""

import argparse
import json
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from trainer.batches import Sampler, TokenWindows
from trainer.data import prepare
from trainer.model import GPT, mean_loss, preset_config
from trainer.tokenizer import load_tokenizer, save_tokenizer, train_bpe
from trainer.train import Dist, TrainConfig, build_optimizers, evaluate

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "corpus"


class GPT2Logits(nn.Module):
    """GPT-2 returning plain logits, as our evaluation expects."""

    def __init__(self, config: GPT2Config) -> None:
        super().__init__()
        self.inner = GPT2LMHeadModel(config)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.inner(input_ids=idx).logits


def train_for(
    model: nn.Module,
    optimizers: list[torch.optim.Optimizer],
    lr_at: Callable[[float], float],
    clip: float | None,
    train: TokenWindows,
    batch: int,
    seconds: float,
) -> int:
    """Train until the wall-clock budget is spent; the learning rate follows time, not steps."""
    sampler = Sampler(len(train), seed=0)
    bases = [[g["lr"] for g in opt.param_groups] for opt in optimizers]
    start, step = time.perf_counter(), 0
    while (elapsed := time.perf_counter() - start) < seconds:
        x, y = train.collate(sampler.micro_batch(step, 0, 1, batch, 0, 1))
        loss = mean_loss(model(x), y)
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        for opt, base in zip(optimizers, bases, strict=True):
            for group, lr in zip(opt.param_groups, base, strict=True):
                group["lr"] = lr * lr_at(elapsed / seconds)
            opt.step()
            opt.zero_grad(set_to_none=True)
        step += 1
    return step


def ours_schedule(progress: float, warmup: float = 0.05, floor: float = 0.1) -> float:
    if progress < warmup:
        return progress / warmup
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * (progress - warmup) / (1 - warmup)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=CORPUS, help="factory dataset or fixture corpus")
    ap.add_argument("--minutes", type=float, default=5.0, help="wall clock per model")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--vocab", type=int, default=4000)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        data_dir, tok_dir = Path(tmp) / "data", Path(tmp) / "tok"
        files = sorted(args.data.glob("*.jsonl")) if args.data.is_dir() else [args.data]
        texts = [t for f in files for t in _texts(f)]
        save_tokenizer(train_bpe(texts, args.vocab), tok_dir)
        tok = load_tokenizer(tok_dir)
        corpus = Path(tmp) / "corpus.jsonl"
        corpus.write_text("".join(f.read_text(encoding="utf-8") for f in files), encoding="utf-8")
        meta = prepare(corpus, tok, data_dir)
        train = TokenWindows([data_dir / s for s in meta["splits"]["train"]["shards"]], args.seq)
        val = TokenWindows([data_dir / s for s in meta["splits"]["validation"]["shards"]], args.seq)
        token_bytes = torch.from_numpy(tok.token_bytes())
        eval_cfg = TrainConfig(eval_examples=len(val), batch_size=args.batch)
        cpu = Dist(0, 1, torch.device("cpu"))

        torch.manual_seed(0)
        cfg = preset_config(args.preset, tok.vocab_size, args.seq)
        ours = GPT(cfg)
        recipe = TrainConfig(lr=3e-3, weight_decay=0.1)
        ours_steps = train_for(
            ours,
            build_optimizers(ours, recipe),
            ours_schedule,
            1.0,
            train,
            args.batch,
            args.minutes * 60,
        )
        ours_bpb = evaluate(ours, val, token_bytes, eval_cfg, cpu)["val_bpb"]

        torch.manual_seed(0)
        base = GPT2Logits(
            GPT2Config(
                vocab_size=tok.vocab_size,
                n_positions=args.seq,
                n_embd=cfg.d_model,
                n_layer=cfg.n_layer,
                n_head=cfg.n_head,
                bos_token_id=tok.bos_id,
                eos_token_id=tok.eos_id,
            )
        )
        adamw = torch.optim.AdamW(base.parameters(), lr=6e-4, weight_decay=0.1)
        base_steps = train_for(
            base, [adamw], lambda _: 1.0, None, train, args.batch, args.minutes * 60
        )
        base_bpb = evaluate(base, val, token_bytes, eval_cfg, cpu)["val_bpb"]

    print(
        f"data {args.data} ({meta['splits']['train']['tokens']} train / "
        f"{meta['splits']['validation']['tokens']} val tokens), {args.minutes:g} min each, "
        f"preset {args.preset} ({cfg.d_model}x{cfg.n_layer}), seq {args.seq}, batch {args.batch}"
    )
    print(
        f"val bits/byte: ours {ours_bpb:.4f} ({ours_steps} steps)  "
        f"gpt2+adamw {base_bpb:.4f} ({base_steps} steps)  ratio {ours_bpb / base_bpb:.3f} "
        "(goal < 1)"
    )


def _texts(path: Path) -> list[str]:
    return [
        json.loads(line).get("text", "")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


if __name__ == "__main__":
    main()
