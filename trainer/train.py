"""The training loop shared by every kind of run (pretrain, sft, classify, dpo): exact resume,
checkpoints, samples at each checkpoint, DDP. What a kind of run learns is its Task.

Exact resume: the examples of a step come from the step number (see batches.py), the learning
rate is a function of the step, dropout's RNG is reseeded from (seed, step, rank) at every
step, and model and optimizer state are restored from the checkpoint. So a run stopped at
step 20 and resumed reproduces the losses of an uninterrupted run bit for bit.

Multi-process: launch with `torchrun`; NCCL on GPU, gloo on CPU. Each rank reads its own
rows of the global batch and the loss is normalised by the global count of what it averages
(tokens, examples or pairs), so the gradient equals one process's with the same global batch.
"""

import json
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from factory.errors import KahaniError
from trainer import checkpoint, freeze
from trainer.batches import Examples, Sampler, TokenWindows
from trainer.data import read_shard, token_dtype
from trainer.export import copy_tokenizer, export, load_hf
from trainer.model import GPT, ModelConfig, preset_config, token_losses
from trainer.options import check, problem, validated, writable_dir
from trainer.sample import generate, stop_tokens
from trainer.signals import Interrupted, StopSignal
from trainer.spec import MODEL_FIELDS, ModelOptions, RunSpec, TrainConfig
from trainer.tokenizer import TextTokenizer, load_tokenizer, same_tokenizer
from trainer.tracking import Tracker, Tracking

SAMPLE_PROMPTS, SAMPLE_TOKENS = 2, 48  # completions written at every checkpoint, for reports


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


def build_optimizers(model: nn.Module, cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    """AdamW with weight decay on 2-D weights only; with muon, Muon takes the blocks' matrices."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    hidden = [p for n, p in params if p.dim() == 2 and "blocks." in n]
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


class Task(Protocol):
    """What a kind of run learns and measures; `fit` does the rest.

    A batch is whatever `train.collate` returns. `loss` gives the loss summed over the batch's
    counted items (tokens, examples or pairs) and sums of any other per-item measures (say,
    reward accuracy), which the loop averages over the global count and logs.
    """

    train: Examples
    validation: Examples | None

    def counted(self, batch: Any) -> int: ...

    def tokens(self, batch: Any) -> int: ...

    def loss(
        self, net: nn.Module, batch: Any, device: torch.device
    ) -> tuple[torch.Tensor, dict[str, float]]: ...

    def evaluate(self, model: nn.Module, d: "Dist") -> dict[str, float]: ...

    def samples(self, model: nn.Module) -> list[dict[str, str]]: ...

    def finish(self, model: nn.Module, run_dir: Path) -> None: ...


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


class LanguageModeling:
    """Next-token prediction on token windows (pretraining) or conversations (SFT)."""

    def __init__(
        self,
        tok: TextTokenizer,
        train: Examples,
        validation: Examples | None,
        cfg: TrainConfig,
        prompts: list[list[int]],
        device: torch.device,
    ) -> None:
        self.tok, self.train, self.validation, self.cfg = tok, train, validation, cfg
        self.prompts = prompts[:SAMPLE_PROMPTS]
        self.token_bytes = torch.from_numpy(tok.token_bytes()).to(device)

    def counted(self, batch: tuple[torch.Tensor, torch.Tensor]) -> int:
        return int((batch[1] != -100).sum())

    def tokens(self, batch: tuple[torch.Tensor, torch.Tensor]) -> int:
        return int((batch[0] != self.tok.pad_id).sum())

    def loss(
        self, net: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], device: torch.device
    ) -> tuple[torch.Tensor, dict[str, float]]:
        x, y = batch[0].to(device), batch[1].to(device)
        logits = net(x)  # (B, T, V)
        loss_sum = F.cross_entropy(
            logits.float().flatten(0, 1), y.flatten(), ignore_index=-100, reduction="sum"
        )
        return loss_sum, {}

    def evaluate(self, model: nn.Module, d: "Dist") -> dict[str, float]:
        assert self.validation is not None
        return evaluate(model, self.validation, self.token_bytes, self.cfg, d)

    def samples(self, model: nn.Module) -> list[dict[str, str]]:
        return completions(model, self.tok, self.prompts)

    def finish(self, model: nn.Module, run_dir: Path) -> None:
        export(model, run_dir / "tokenizer", run_dir / "hf")
        print(f"exported {run_dir / 'hf'}", flush=True)


def completions(model: GPT, tok: TextTokenizer, prompts: list[list[int]]) -> list[dict[str, str]]:
    """One completion of each prompt with a fixed seed, so checkpoints can be compared."""
    generator = torch.Generator().manual_seed(0)
    rows = []
    for ids in prompts:
        (out,) = generate(model, ids, 1, SAMPLE_TOKENS, 0.8, 50, stop_tokens(tok), generator)
        rows.append({"prompt": tok.decode(ids), "completion": tok.decode(out)})
    model.train()
    return rows


def _log(
    run_dir: Path, row: dict[str, Any], tracker: Tracker | None, name: str = "metrics"
) -> None:
    with open(run_dir / f"{name}.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
    if tracker is not None and name == "metrics":
        tracker.log(row)


def _truncate_logs(run_dir: Path, step: int) -> None:
    """Drop log rows past the checkpoint being resumed, so the logs have no duplicate steps."""
    for name in ("metrics.jsonl", "samples.jsonl"):
        path = run_dir / name
        if path.exists():
            rows = path.read_text(encoding="utf-8").splitlines()
            kept = [row for row in rows if json.loads(row)["step"] <= step]
            path.write_text("".join(row + "\n" for row in kept), encoding="utf-8")


LABELS = {"val_loss": "val loss", "val_bpb": "val bits/byte"}


def _show(metrics: dict[str, float]) -> str:
    return ", ".join(f"{LABELS.get(k, k.replace('_', ' '))} {v:.4f}" for k, v in metrics.items())


def fit(
    run_dir: Path,
    spec: RunSpec,
    model: nn.Module,
    task: Task,
    resume_from: checkpoint.Checkpoint | None,
    d: "Dist",
    stop_at: int | None = None,
    tracking: Tracking | None = None,
) -> bool:
    """Train `model` in place from step 0 or the checkpoint; True when all steps are done,
    and then the task's `finish` has exported the run. Raises Interrupted after
    checkpointing when SIGINT/SIGTERM asked it to stop."""
    cfg = spec.train
    trainable_note = freeze.apply(cfg.freeze, model)
    model.to(d.device)
    optimizers = build_optimizers(model, cfg)
    start = 0
    if resume_from is not None:
        checkpoint.load_model_tensors(model, resume_from.model_tensors())
        for opt, state in zip(optimizers, resume_from.optimizer_states(), strict=True):
            opt.load_state_dict(state)
        start = resume_from.step
        if d.main:
            _truncate_logs(run_dir, start)
    net: nn.Module = model
    if d.world > 1:
        net = DistributedDataParallel(
            model, device_ids=[d.device.index] if d.device.type == "cuda" else None
        )
    if cfg.compile:
        net = torch.compile(net)
    sampler = Sampler(len(task.train), cfg.seed)
    trainable = [p for p in model.parameters() if p.requires_grad]
    end = min(cfg.steps, stop_at) if stop_at else cfg.steps
    num_params = sum(p.numel() for p in model.parameters())
    shape = spec.model
    flops_per_token = 6 * num_params + 12 * shape.n_layer * shape.d_model * shape.block_size
    if d.main:
        print(
            f"{spec.kind}: {num_params / 1e6:.2f}M parameters, steps {start}..{end} of "
            f"{cfg.steps}, {d.world} process(es) on {d.device.type}\n{trainable_note}",
            flush=True,
        )
    tracker = tracking.start(run_dir.name, spec.model_dump()) if tracking and d.main else None
    step = start
    with StopSignal() as stop:
        tick = time.perf_counter()
        while step < end:
            torch.manual_seed(cfg.seed * 1_000_003 + step * d.world + d.rank)  # dropout's RNG
            micro = [
                task.train.collate(
                    sampler.micro_batch(step, m, cfg.grad_accum, cfg.batch_size, d.rank, d.world)
                )
                for m in range(cfg.grad_accum)
            ]
            counted, tokens = d.sum(
                [float(sum(task.counted(b) for b in micro)), float(sum(map(task.tokens, micro)))]
            )
            loss_total, extras = 0.0, {}
            for i, batch in enumerate(micro):
                sync = nullcontext() if d.world == 1 or i == len(micro) - 1 else net.no_sync()
                with sync, autocast(d.device):
                    loss_sum, sums = task.loss(net, batch, d.device)
                    # DDP averages gradients over ranks; * world makes that a global mean
                    (loss_sum * d.world / counted).backward()
                loss_total += loss_sum.item()
                for k, v in sums.items():
                    extras[k] = extras.get(k, 0.0) + v
            grad_norm = torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip).item()
            factor = lr_factor(step, cfg)
            for opt in optimizers:
                for group in opt.param_groups:
                    group["lr"] = group["base_lr"] * factor
                opt.step()
                opt.zero_grad(set_to_none=True)
            step += 1
            names = sorted(extras)
            loss_all, want_stop, *extra_all = d.sum(
                [loss_total, float(stop.requested), *(extras[k] for k in names)]
            )
            if d.main:
                elapsed = time.perf_counter() - tick
                row = {
                    "step": step,
                    "loss": loss_all / counted,
                    **{k: v / counted for k, v in zip(names, extra_all, strict=True)},
                    "lr": cfg.lr * factor,
                    "grad_norm": grad_norm,
                    "tokens_per_s": tokens / max(elapsed, 1e-9),
                }
                if d.device.type == "cuda":  # model flops utilisation against an H100's bf16 peak
                    row["mfu"] = flops_per_token * row["tokens_per_s"] / 989e12
                _log(run_dir, row, tracker)
                if step % cfg.log_every == 0 or step == end or step == start + 1:
                    shown = "".join(f" {k.replace('_', ' ')} {row[k]:.3f}" for k in names)
                    mfu = f" mfu {row['mfu']:.1%}" if "mfu" in row else ""
                    print(
                        f"step {step}: loss {row['loss']:.4f}{shown} lr {row['lr']:.2e} "
                        f"{row['tokens_per_s']:.0f} tok/s{mfu}",
                        flush=True,
                    )
            if task.validation is not None and (step % cfg.eval_every == 0 or step == cfg.steps):
                metrics = task.evaluate(model, d)
                if d.main:
                    _log(run_dir, {"step": step, **metrics}, tracker)
                    print(f"step {step}: {_show(metrics)}", flush=True)
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
                    for row in task.samples(model):
                        _log(run_dir, {"step": step, **row}, None, "samples")
                d.barrier()
            if want_stop:
                if tracker is not None:
                    tracker.finish()
                raise Interrupted(f"stopped at step {step}; continue with --resume")
            tick = time.perf_counter()
    done = step >= cfg.steps
    if done and d.main:  # every finished run ends with a folder transformers loads
        task.finish(model, run_dir)
    if tracker is not None:
        tracker.finish()
    return done


def open_run(run_dir: Path, spec: RunSpec, resume: bool, d: "Dist") -> checkpoint.Checkpoint | None:
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
        writable_dir(run_dir)
        if ckpt is None:  # logs of a start that never reached a checkpoint are not this run's
            for stale in ("metrics.jsonl", "samples.jsonl"):
                (run_dir / stale).unlink(missing_ok=True)
        (run_dir / "run.json").write_text(spec.model_dump_json(indent=1))
    return ckpt


def saved_spec(run_dir: Path) -> RunSpec | None:
    path = run_dir / "run.json"
    return RunSpec.model_validate_json(path.read_text()) if path.exists() else None


def train_config(
    prior: RunSpec | None, defaults: dict[str, Any], opts: dict[str, Any]
) -> TrainConfig:
    """The run's settings: the resumed run's (or these defaults), then the flags given."""
    base = prior.train.model_dump() if prior else defaults
    return validated(TrainConfig, {**base, **check(TrainConfig, opts)})


def _data_meta(data_dir: Path) -> dict[str, Any]:
    meta_path = data_dir / "meta.json"
    if not meta_path.is_file():
        raise KahaniError(
            f"{data_dir} is not token data from `trainer prepare` (no meta.json); make it with "
            f"`trainer prepare {data_dir} --tokenizer TOK --out data/` and pass --data data/"
        )
    return json.loads(meta_path.read_text())


def _story_prompts(tok: TextTokenizer, shards: list[Path]) -> list[list[int]]:
    """`<bos>` and the first 6 tokens of the first documents: prompts for checkpoint samples."""
    prompts: list[list[int]] = []
    for path in shards:
        tokens = read_shard(path)
        starts = (tokens[: 1 << 16] == tok.bos_id).nonzero()[0]
        for s in starts[:SAMPLE_PROMPTS]:
            prompts.append([int(t) for t in tokens[s : s + 7]])
        if len(prompts) >= SAMPLE_PROMPTS:
            break
    return prompts or [[tok.bos_id]]


def _model_for(
    init: Path | None, prior: RunSpec | None, tok: TextTokenizer, model_opts: dict[str, Any]
) -> tuple[str, ModelConfig, dict[str, torch.Tensor] | None]:
    """(preset, shape, starting weights or None) for a new, resumed or initialised run."""
    given = check(ModelOptions, model_opts)
    if init is not None and prior is None:  # on resume, the checkpoint holds the weights
        shape_flags = sorted(set(given) - {"block_size", "dropout"})
        if shape_flags:
            raise KahaniError(
                f"--init {init} sets the model's shape; drop "
                + ", ".join("--" + f.replace("_", "-") for f in shape_flags)
            )
        base, init_tok = load_hf(init)
        if not same_tokenizer(tok, init_tok):
            raise KahaniError(
                f"--init {init} was trained with another tokenizer than the data's; prepare "
                f"the data with that run's tokenizer: trainer prepare DATA --tokenizer "
                f"{init}/tokenizer --out DIR"
            )
        cfg = validated(ModelConfig, {**base.cfg.model_dump(), **given})
        return "from-init", cfg, base.state_dict()
    if prior is not None and "preset" not in given:  # resume: the run's shape, flags on top
        fields = {MODEL_FIELDS.get(k, k): v for k, v in given.items()}
        return prior.preset, validated(ModelConfig, {**prior.model.model_dump(), **fields}), None
    preset = given.pop("preset", None) or "tiny"
    block_size = given.pop("block_size", None) or (prior.model.block_size if prior else 256)
    fields = {MODEL_FIELDS.get(k, k): v for k, v in given.items()}
    try:
        cfg = preset_config(preset, tok.vocab_size, block_size, **fields)
    except ValidationError as err:
        raise KahaniError(f"model shape: {problem(err)}") from err
    return preset, cfg, None


def pretrain(
    data_dir: Path,
    run_dir: Path,
    model_opts: dict[str, Any],
    train_opts: dict[str, Any],
    resume: bool = False,
    stop_at: int | None = None,
    init: Path | None = None,
    tracker: Tracking | None = None,
) -> bool:
    """Pretrain on `trainer prepare` output, from scratch or from run `init`'s weights (continued
    pretraining, say on a second language). Options left out come from run.json on resume."""
    meta = _data_meta(data_dir)
    tok = load_tokenizer(data_dir / "tokenizer")
    token_dtype(tok.vocab_size, meta["dtype"])
    prior = saved_spec(run_dir) if resume else None
    if prior and prior.init and init is None:
        init = Path(prior.init)
    preset, model_cfg, weights = _model_for(init, prior, tok, dict(model_opts))
    train_cfg = train_config(prior, TrainConfig().model_dump(), train_opts)
    spec = RunSpec(
        kind="pretrain",
        data=str(data_dir),
        init=str(init) if init else None,
        preset=preset,
        model=model_cfg,
        train=train_cfg,
    )
    block_size = model_cfg.block_size
    train_shards = [data_dir / s for s in meta["splits"]["train"]["shards"]]
    train_ex = TokenWindows(train_shards, block_size)
    val_shards = [data_dir / s for s in meta["splits"]["validation"]["shards"]]
    with distributed() as d:
        ckpt = open_run(run_dir, spec, resume, d)
        if d.main:
            copy_tokenizer(data_dir / "tokenizer", run_dir / "tokenizer")
        # A small validation split (5% of a few hundred stories) still measures something:
        # its windows may be shorter than the training context.
        val_block = min(block_size, meta["splits"]["validation"]["tokens"] - 1)
        val_ex = TokenWindows(val_shards, val_block) if val_shards and val_block > 0 else None
        torch.manual_seed(train_cfg.seed)
        model = GPT(model_cfg)
        if weights is not None:
            checkpoint.load_model_tensors(model, weights)
        task = LanguageModeling(
            tok,
            train_ex,
            val_ex,
            train_cfg,
            _story_prompts(tok, val_shards or train_shards),
            d.device,
        )
        return fit(run_dir, spec, model, task, ckpt, d, stop_at, tracker)
