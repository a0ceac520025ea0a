"""The training loop shared by pretraining and SFT: exact resume, checkpoints, DDP.

Exact resume: the examples of a step come from the step number (see batches.py), the learning
rate is a function of the step, dropout's RNG is reseeded from (seed, step, rank) at every
step, and model and optimizer state are restored from the checkpoint. So a run stopped at
step 20 and resumed reproduces the losses of an uninterrupted run bit for bit.

Multi-process: launch with `torchrun`; NCCL on GPU, gloo on CPU. Each rank reads its own
rows of the global batch and the loss is normalised by the global token count, so the
gradient equals one process's with the same global batch.
"""

import json
import math
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict
from torch.nn.parallel import DistributedDataParallel

from factory.errors import KahaniError
from trainer import checkpoint
from trainer.batches import Examples, Sampler, TokenWindows
from trainer.data import token_dtype
from trainer.export import copy_tokenizer, export
from trainer.model import GPT, ModelConfig, preset_config, token_losses
from trainer.tokenizer import load_tokenizer


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = 2000
    batch_size: int = 16  # rows per process per micro-step
    grad_accum: int = 1
    lr: float = 3e-3
    min_lr_ratio: float = 0.1  # cosine decays to lr * this
    warmup_steps: int | None = None  # None: the first 5% of the steps
    weight_decay: float = 0.1  # on 2-D weights only
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    optimizer: Literal["adamw", "muon"] = "adamw"  # muon: hidden matrices by Muon, rest AdamW
    eval_every: int = 100
    eval_examples: int = 64
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    log_every: int = 10
    seed: int = 1337
    compile: bool = False
    freeze_layers: int = 0  # SFT: keep the lowest N blocks fixed


class RunSpec(BaseModel):
    """Everything that defines a run; saved as run.json and inside every checkpoint."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["pretrain", "sft"]
    data: str
    init: str | None = None  # the run an SFT run starts from
    preset: str
    model: ModelConfig
    train: TrainConfig


@dataclass
class Dist:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: list[float]) -> list[float]:
        """Sum numbers over all processes (identity with one process)."""
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


@contextmanager
def distributed() -> Iterator[Dist]:
    """Join the torchrun process group if there is one; one CPU/GPU process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world == 1:
        yield Dist(0, 1, device)
        return
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        yield Dist(dist.get_rank(), world, device)
    finally:
        dist.destroy_process_group()


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warmup, then cosine from 1 down to min_lr_ratio at the last step."""
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else max(1, cfg.steps // 20)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, cfg.steps - warmup)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (
        1 + math.cos(math.pi * min(progress, 1.0))
    )


def build_optimizers(model: GPT, cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    """AdamW with weight decay on 2-D weights only; with muon, Muon takes the hidden matrices."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    hidden = [p for n, p in params if p.dim() == 2 and not n.startswith(("embed", "lm_head"))]
    if cfg.optimizer == "muon":
        muon = torch.optim.Muon(
            hidden, lr=cfg.lr, weight_decay=cfg.weight_decay, adjust_lr_fn="match_rms_adamw"
        )
        taken = {id(p) for p in hidden}
        params = [(n, p) for n, p in params if id(p) not in taken]
        optimizers: list[torch.optim.Optimizer] = [muon]
    else:
        optimizers = []
    decay = [p for _, p in params if p.dim() >= 2]
    no_decay = [p for _, p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    optimizers.append(torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2)))
    for opt in optimizers:
        for group in opt.param_groups:
            group["base_lr"] = cfg.lr
    return optimizers


@torch.no_grad()
def evaluate(
    model: GPT, examples: Examples, token_bytes: torch.Tensor, cfg: TrainConfig, d: Dist
) -> dict[str, float]:
    """Validation loss (nats per counted token) and bits per byte over the first examples."""
    model.eval()
    mine = list(range(d.rank, min(cfg.eval_examples, len(examples)), d.world))
    totals = [0.0, 0.0, 0.0, 0.0]  # loss sum, tokens, loss sum on text tokens, their bytes
    for start in range(0, len(mine), cfg.batch_size):
        x, y = examples.collate(mine[start : start + cfg.batch_size])
        x, y = x.to(d.device), y.to(d.device)
        with autocast(d.device):
            losses = token_losses(model(x), y)  # (B, T)
        counted = y != -100
        nbytes = token_bytes[y.clamp(min=0)] * counted  # specials have 0 bytes: out of bpb
        totals[0] += losses[counted].sum().item()
        totals[1] += counted.sum().item()
        totals[2] += losses[nbytes > 0].sum().item()
        totals[3] += nbytes.sum().item()
    loss_sum, tokens, text_loss, nbytes = d.sum(totals)
    model.train()
    return {
        "val_loss": loss_sum / max(tokens, 1),
        "val_bpb": text_loss / math.log(2) / max(nbytes, 1),
    }


def autocast(device: torch.device) -> Any:
    """bf16 autocast on GPU; plain fp32 on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


class StopSignal:
    """Turns SIGINT/SIGTERM into a request to checkpoint and stop after the current step."""

    def __init__(self) -> None:
        self.requested = False

    def __enter__(self) -> "StopSignal":
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)


def _log(run_dir: Path, row: dict[str, Any]) -> None:
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


def _truncate_metrics(run_dir: Path, step: int) -> None:
    """Drop log rows past the checkpoint being resumed, so the log has no duplicate steps."""
    path = run_dir / "metrics.jsonl"
    if path.exists():
        rows = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= step]
        path.write_text("".join(row + "\n" for row in rows))


def fit(
    run_dir: Path,
    spec: RunSpec,
    model: GPT,
    train_ex: Examples,
    val_ex: Examples | None,
    token_bytes: torch.Tensor,
    resume_from: checkpoint.Checkpoint | None,
    d: Dist,
    stop_at: int | None = None,
) -> bool:
    """Train `model` in place from step 0 or the checkpoint; True when all steps are done,
    and then the run's `hf/` folder is written."""
    cfg = spec.train
    for block in model.blocks[: cfg.freeze_layers]:
        block.requires_grad_(False)
    model.to(d.device)
    optimizers = build_optimizers(model, cfg)
    start = 0
    if resume_from is not None:
        checkpoint.load_model_tensors(model, resume_from.model_tensors())
        for opt, state in zip(optimizers, resume_from.optimizer_states(), strict=True):
            opt.load_state_dict(state)
        start = resume_from.step
        if d.main:
            _truncate_metrics(run_dir, start)
    net: torch.nn.Module = model
    if d.world > 1:
        net = DistributedDataParallel(
            model, device_ids=[d.device.index] if d.device.type == "cuda" else None
        )
    if cfg.compile:
        net = torch.compile(net)
    sampler = Sampler(len(train_ex), cfg.seed)
    token_bytes = token_bytes.to(d.device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    end = min(cfg.steps, stop_at) if stop_at else cfg.steps
    flops_per_token = (
        6 * model.num_params()
        + 12 * spec.model.n_layer * spec.model.d_model * spec.model.block_size
    )
    if d.main:
        print(
            f"{spec.kind}: {model.num_params() / 1e6:.2f}M parameters, steps {start}..{end} of "
            f"{cfg.steps}, {d.world} process(es) on {d.device.type}",
            flush=True,
        )
    step = start
    with StopSignal() as stop:
        tick = time.perf_counter()
        while step < end:
            torch.manual_seed(cfg.seed * 1_000_003 + step * d.world + d.rank)  # dropout's RNG
            micro = [
                train_ex.collate(
                    sampler.micro_batch(step, m, cfg.grad_accum, cfg.batch_size, d.rank, d.world)
                )
                for m in range(cfg.grad_accum)
            ]
            (counted,) = d.sum([float(sum(int((y != -100).sum()) for _, y in micro))])
            loss_total = 0.0
            for m, (x, y) in enumerate(micro):
                x, y = x.to(d.device), y.to(d.device)
                sync = nullcontext() if d.world == 1 or m == len(micro) - 1 else net.no_sync()
                with sync, autocast(d.device):
                    logits = net(x)  # (B, T, V)
                    loss_sum = F.cross_entropy(
                        logits.float().flatten(0, 1),
                        y.flatten(),
                        ignore_index=-100,
                        reduction="sum",
                    )
                    # DDP averages gradients over ranks; * world makes that a global token mean
                    (loss_sum * d.world / counted).backward()
                loss_total += loss_sum.item()
            grad_norm = torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip).item()
            factor = lr_factor(step, cfg)
            for opt in optimizers:
                for group in opt.param_groups:
                    group["lr"] = group["base_lr"] * factor
                opt.step()
                opt.zero_grad(set_to_none=True)
            step += 1
            (loss_all,) = d.sum([loss_total])
            (want_stop,) = d.sum([float(stop.requested)])
            if d.main:
                elapsed = time.perf_counter() - tick
                row = {
                    "step": step,
                    "loss": loss_all / counted,
                    "lr": cfg.lr * factor,
                    "grad_norm": grad_norm,
                    "tokens_per_s": counted / max(elapsed, 1e-9),
                }
                if d.device.type == "cuda":  # model flops utilisation against an H100's bf16 peak
                    row["mfu"] = flops_per_token * row["tokens_per_s"] / 989e12
                _log(run_dir, row)
                if step % cfg.log_every == 0 or step == end or step == start + 1:
                    mfu = f" mfu {row['mfu']:.1%}" if "mfu" in row else ""
                    print(
                        f"step {step}: loss {row['loss']:.4f} lr {row['lr']:.2e} "
                        f"{row['tokens_per_s']:.0f} tok/s{mfu}",
                        flush=True,
                    )
            if val_ex is not None and (step % cfg.eval_every == 0 or step == cfg.steps):
                metrics = evaluate(model, val_ex, token_bytes, cfg, d)
                if d.main:
                    _log(run_dir, {"step": step, **metrics})
                    print(
                        f"step {step}: val loss {metrics['val_loss']:.4f}, "
                        f"val bits/byte {metrics['val_bpb']:.4f}",
                        flush=True,
                    )
            if step % cfg.checkpoint_every == 0 or step == end or want_stop:
                if d.main:
                    checkpoint.save(
                        run_dir,
                        step,
                        model,
                        optimizers,
                        {"spec": spec.model_dump()},
                        cfg.keep_checkpoints,
                    )
                d.barrier()
            if want_stop:
                if d.main:
                    print(f"stopped at step {step}; continue with --resume", file=sys.stderr)
                break
            tick = time.perf_counter()
    done = step >= cfg.steps
    if done and d.main:  # every finished run ends with a folder transformers loads
        export(model, run_dir / "tokenizer", run_dir / "hf")
        print(f"exported {run_dir / 'hf'}", flush=True)
    return done


def open_run(run_dir: Path, spec: RunSpec, resume: bool, d: Dist) -> checkpoint.Checkpoint | None:
    """Check that a new run has a fresh directory, or that a resume keeps the model's shape."""
    ckpt = checkpoint.latest(run_dir) if resume else None
    if resume and ckpt is None:
        raise KahaniError(
            f"{run_dir} has no checkpoint to resume; drop --resume to start a new run"
        )
    if not resume and (run_dir / "checkpoints").exists():
        raise KahaniError(
            f"{run_dir} already holds a run; pass --resume to continue it or choose another --out"
        )
    if ckpt is not None:
        saved = ModelConfig.model_validate(ckpt.state["spec"]["model"])
        if saved != spec.model:
            diff = ", ".join(
                f"{k} {getattr(saved, k)} -> {v}" for k, v in spec.model if getattr(saved, k) != v
            )
            raise KahaniError(
                f"resume changes the model shape ({diff}); use the run's settings or a new --out"
            )
    d.barrier()
    if d.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "run.json").write_text(spec.model_dump_json(indent=1))
    return ckpt


def saved_spec(run_dir: Path) -> RunSpec | None:
    path = run_dir / "run.json"
    return RunSpec.model_validate_json(path.read_text()) if path.exists() else None


def pretrain(
    data_dir: Path,
    run_dir: Path,
    model_opts: dict[str, Any],
    train_opts: dict[str, Any],
    resume: bool = False,
    stop_at: int | None = None,
) -> bool:
    """Pretrain on `trainer prepare` output. Options left out come from run.json on resume."""
    meta_path = data_dir / "meta.json"
    if not meta_path.exists():
        raise KahaniError(
            f"{data_dir} has no meta.json; make it with `trainer prepare DATA --out {data_dir}`"
        )
    meta = json.loads(meta_path.read_text())
    tok = load_tokenizer(data_dir / "tokenizer")
    token_dtype(tok.vocab_size, meta["dtype"])
    prior = saved_spec(run_dir) if resume else None
    base_model: dict[str, Any] = prior.model.model_dump() if prior else {}
    preset = model_opts.pop("preset", None) or (prior.preset if prior else "tiny")
    block_size = model_opts.pop("block_size", None) or base_model.get("block_size", 256)
    shape = {
        k: base_model[k]
        for k in ("qk_norm", "activation", "tie_embeddings", "dropout")
        if k in base_model
    }
    model_cfg = preset_config(preset, tok.vocab_size, block_size, **{**shape, **model_opts})
    train_cfg = TrainConfig.model_validate(
        {**(prior.train.model_dump() if prior else {}), **train_opts}
    )
    spec = RunSpec(
        kind="pretrain", data=str(data_dir), preset=preset, model=model_cfg, train=train_cfg
    )
    train_ex = TokenWindows([data_dir / s for s in meta["splits"]["train"]["shards"]], block_size)
    val_shards = meta["splits"]["validation"]["shards"]
    with distributed() as d:
        ckpt = open_run(run_dir, spec, resume, d)
        if d.main:
            copy_tokenizer(data_dir / "tokenizer", run_dir / "tokenizer")
        # A small validation split (5% of a few hundred stories) still measures something:
        # its windows may be shorter than the training context.
        val_block = min(block_size, meta["splits"]["validation"]["tokens"] - 1)
        val_ex = (
            TokenWindows([data_dir / s for s in val_shards], val_block)
            if val_shards and val_block > 0
            else None
        )
        torch.manual_seed(train_cfg.seed)
        model = GPT(model_cfg)
        return fit(
            run_dir,
            spec,
            model,
            train_ex,
            val_ex,
            torch.from_numpy(tok.token_bytes()),
            ckpt,
            d,
            stop_at,
        )
