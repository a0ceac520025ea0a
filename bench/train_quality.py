"""Our default recipe against a GPT-2 baseline: same data, same budget, bits per byte.

Both models share the tokenizer, the token shards, the width, depth and heads, the batches
(same sampler, same order) and the budget: the same number of steps (so the same training
tokens), or with --cpu-minutes the same CPU time each. Both follow linear warmup over the
first 5% of the budget, then cosine down to 10%, with gradient clipping at 1.0.

Ours: the trainer's defaults, untouched (`GPT` from `preset_config`, `TrainConfig()`:
RMSNorm, rotary, SwiGLU, tied embeddings, no dropout; AdamW at 3e-3 with decay on 2-D
weights only). Baseline: transformers' GPT2LMHeadModel with its default config (dropout
0.1 on embeddings, residual branches and attention) and nanoGPT's GPT-2 recipe: AdamW at
6e-4, betas 0.9/0.95, weight decay 0.1 on 2-D weights. Validation bits per byte is printed
at four points of each run, so overfitting shows. Goal: ours lower at the end.

The fixture corpus is tiny (about 44k training tokens): at 8 epochs both models are still
improving; far beyond that (--epochs 32) ours, without dropout, memorises it and loses, so
the comparison becomes one of regularisation (train with --dropout 0.1 for many epochs).
Point --data at a factory dataset for a meaningful number.

    python bench/train_quality.py                        # fixture corpus, 8 epochs each
    python bench/train_quality.py --cpu-minutes 5        # same CPU time each instead
    python bench/train_quality.py --data ../datasets/hindi-stories --epochs 1 --preset 5M
"""

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from trainer.batches import Sampler, TokenWindows
from trainer.data import column, prepare, read_rows
from trainer.model import GPT, mean_loss, preset_config
from trainer.tokenizer import load_tokenizer, save_tokenizer, train_bpe
from trainer.train import Dist, TrainConfig, build_optimizers, evaluate

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "corpus"
LANGUAGES = ("hindi", "marathi", "bangla", "english", "hinglish")  # the fixture's stories


class GPT2Logits(nn.Module):
    """GPT-2 returning plain logits, as our evaluation expects."""

    def __init__(self, config: GPT2Config) -> None:
        super().__init__()
        self.inner = GPT2LMHeadModel(config)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.inner(input_ids=idx).logits


def schedule(progress: float, warmup: float = 0.05, floor: float = 0.1) -> float:
    """Linear warmup over the first 5% of the budget, then cosine from 1 down to `floor`."""
    if progress < warmup:
        return (progress + 1e-3) / warmup
    done = min(1.0, (progress - warmup) / (1 - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * done))


def train_and_eval(
    name: str,
    model: nn.Module,
    optimizers: list[torch.optim.Optimizer],
    train: TokenWindows,
    evaluate_fn,
    args: argparse.Namespace,
    steps: int,
) -> dict:
    """Train to the budget (steps, or CPU seconds); evaluate at each quarter of it."""
    sampler = Sampler(len(train), seed=0)
    bases = [[g["lr"] for g in opt.param_groups] for opt in optimizers]
    cpu_budget = args.cpu_minutes * 60 if args.cpu_minutes else None
    marks, curve = [0.25, 0.5, 0.75, 1.0], []
    cpu, step = 0.0, 0
    while True:
        progress = cpu / cpu_budget if cpu_budget else step / steps
        if marks and progress >= marks[0] - 1e-9:
            curve.append((step, evaluate_fn(model)))
            print(f"  {name} step {step}: val bits/byte {curve[-1][1]:.4f}", flush=True)
            marks.pop(0)
            if not marks:
                break
        start = time.process_time()  # CPU time: robust to other jobs sharing the cores
        x, y = train.collate(sampler.micro_batch(step, 0, 1, args.batch, 0, 1))
        mean_loss(model(x), y).backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for opt, base in zip(optimizers, bases, strict=True):
            for group, lr in zip(opt.param_groups, base, strict=True):
                group["lr"] = lr * schedule(progress)
            opt.step()
            opt.zero_grad(set_to_none=True)
        cpu += time.process_time() - start
        step += 1
    return {"steps": step, "cpu_s": cpu, "curve": curve, "bpb": curve[-1][1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=CORPUS, help="factory dataset, JSONL or text")
    ap.add_argument("--epochs", type=float, default=8.0, help="budget: passes over train")
    ap.add_argument("--cpu-minutes", type=float, help="budget: CPU minutes per model instead")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--vocab", type=int, default=4000)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--val-fraction", type=float, default=0.15, help="when data has no split")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        data_dir, tok_dir = Path(tmp) / "data", Path(tmp) / "tok"
        source = args.data
        if args.data == CORPUS:  # the five story files, pooled (other fixtures repeat them)
            source = Path(tmp) / "corpus.jsonl"
            source.write_text(
                "".join((CORPUS / f"{lang}.jsonl").read_text("utf-8") for lang in LANGUAGES),
                encoding="utf-8",
            )
        texts = column(read_rows(source, args.val_fraction)["train"], "text", source)
        save_tokenizer(train_bpe(texts, args.vocab), tok_dir)
        tok = load_tokenizer(tok_dir)
        meta = prepare(source, tok, data_dir, args.val_fraction)
        train = TokenWindows([data_dir / s for s in meta["splits"]["train"]["shards"]], args.seq)
        val = TokenWindows([data_dir / s for s in meta["splits"]["validation"]["shards"]], args.seq)
        token_bytes = torch.from_numpy(tok.token_bytes())
        eval_cfg = TrainConfig(eval_examples=len(val), batch_size=args.batch)
        cpu = Dist(0, 1, torch.device("cpu"))
        steps = max(1, round(args.epochs * len(train) / args.batch))

        def bpb(model: nn.Module) -> float:
            return evaluate(model, val, token_bytes, eval_cfg, cpu)["val_bpb"]

        print(
            f"data {args.data} ({meta['splits']['train']['tokens']} train / "
            f"{meta['splits']['validation']['tokens']} val tokens), preset {args.preset}, "
            f"seq {args.seq}, batch {args.batch}, budget "
            + (f"{args.cpu_minutes:g} CPU min each" if args.cpu_minutes else f"{steps} steps"),
            flush=True,
        )
        torch.manual_seed(0)
        cfg = preset_config(args.preset, tok.vocab_size, args.seq)
        ours = GPT(cfg)
        ours_run = train_and_eval(
            "ours", ours, build_optimizers(ours, TrainConfig()), train, bpb, args, steps
        )

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
        params = [p for p in base.parameters() if p.requires_grad]
        adamw = torch.optim.AdamW(
            [
                {"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
                {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
            ],
            lr=6e-4,
            betas=(0.9, 0.95),
        )
        base_run = train_and_eval("gpt2", base, [adamw], train, bpb, args, steps)

    print(
        f"val bits/byte: ours {ours_run['bpb']:.4f} ({ours_run['steps']} steps, "
        f"{ours_run['cpu_s']:.0f} CPU s)  gpt2+adamw {base_run['bpb']:.4f} "
        f"({base_run['steps']} steps, {base_run['cpu_s']:.0f} CPU s)  "
        f"ratio {ours_run['bpb'] / base_run['bpb']:.3f} (goal < 1)"
    )


if __name__ == "__main__":
    main()
