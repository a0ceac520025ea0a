"""`trainer`: tokenizers and small GPT models from factory datasets.

Only typer and pydantic are imported here: torch, transformers and tokenizers load inside the
commands that need them, so `trainer --help` answers at once.
"""

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from factory.errors import KahaniError, run_cli
from factory.flags import Version, given
from trainer.options import (
    PrepareOptions,
    SampleOptions,
    SplitOptions,
    TokenizerOptions,
    check,
    writable_dir,
    writable_file,
)
from trainer.spec import DPOSettings, ModelOptions, TrainConfig
from trainer.tracking import tracking

app = typer.Typer(
    help="Train tokenizers and small GPT models on factory datasets, fine-tune them (chat, "
    "classification, DPO), sweep their settings, export them to Hugging Face format, sample "
    "from them and report on their training.",
    pretty_exceptions_enable=False,
    add_completion=False,
    no_args_is_help=True,
)


@app.callback()
def _main(version: Version = None) -> None:
    """Train tokenizers and small GPT models, fine-tune, sweep, export, sample, report."""


# Options shared by every kind of run, declared once.
Steps = Annotated[int | None, typer.Option(help="Total optimizer steps")]
BatchSize = Annotated[int | None, typer.Option(help="Sequences per process per micro-step")]
GradAccum = Annotated[int | None, typer.Option(help="Micro-steps per optimizer step")]
Lr = Annotated[float | None, typer.Option(help="Peak learning rate")]
Warmup = Annotated[int | None, typer.Option(help="Linear warmup (default: the first 5% of steps)")]
Freeze = Annotated[
    str | None,
    typer.Option(
        help="Parts kept fixed, comma-separated: embeddings, blocks:I-J (0 is the lowest), "
        "all-but-head"
    ),
]
EvalEvery = Annotated[int | None, typer.Option(help="Steps between validations")]
CheckpointEvery = Annotated[int | None, typer.Option(help="Steps between checkpoints")]
Seed = Annotated[int | None, typer.Option(help="Seed of the initial weights and the data order")]
Resume = Annotated[bool, typer.Option(help="Continue from the newest intact checkpoint")]
StopAt = Annotated[
    int | None, typer.Option(help="Checkpoint and stop at this step (split a run into jobs)")
]
Track = Annotated[
    str | None, typer.Option(help="Also log metrics to trackio or wandb (when installed)")
]
TrackProject = Annotated[str, typer.Option(help="Project name for --track")]


@app.command()
def tokenizer(
    data: Annotated[
        list[Path],
        typer.Argument(
            help="Factory dataset dir, .jsonl, .parquet, .csv or .txt (several with --compare)"
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Directory for tokenizer.json; with --compare, the HTML report "
            "(default tokenizers.html)"
        ),
    ] = None,
    vocab: Annotated[
        int, typer.Option(help="Vocabulary size, specials and byte tokens included")
    ] = 16000,
    kind: Annotated[
        str, typer.Option(help="bpe, char, or hf (copy the tokenizer in --base)")
    ] = "bpe",
    base: Annotated[
        Path | None, typer.Option(help="With --kind hf: an existing tokenizer directory")
    ] = None,
    val_fraction: Annotated[
        float, typer.Option(help="Share of rows held out for the statistics")
    ] = 0.05,
    compare: Annotated[
        list[Path] | None,
        typer.Option(
            help="Compare tokenizer folders (ours, --kind char, any Hugging Face one) on each "
            "language of DATA instead of training one; repeat for each"
        ),
    ] = None,
) -> None:
    """Train a tokenizer on the `text` column and print fertility and bytes per token; or,
    with --compare, compare tokenizers language by language in a table and an HTML report.

    Example: trainer tokenizer exports/hindi --vocab 8000 --out tok/hindi
    Example: trainer tokenizer hi.jsonl bn.jsonl --compare tok --compare tok-char --out t.html
    """
    if compare:
        _compare_tokenizers(data, compare, out or Path("tokenizers.html"))
        return
    opts = check(TokenizerOptions, {"vocab": vocab, "kind": kind, "val_fraction": val_fraction})
    if out is None:
        raise KahaniError("give --out DIR, the folder for the tokenizer")
    if len(data) != 1:
        raise KahaniError("give one DATA to train a tokenizer on (several only with --compare)")
    from trainer import tokenizer as tk
    from trainer.data import column, read_rows

    rows = read_rows(data[0], opts["val_fraction"])
    texts = column(rows["train"], "text", data[0])
    if kind == "hf" and base is None:
        raise KahaniError("--kind hf needs --base DIR, a directory holding a tokenizer.json")
    writable_dir(out)
    if kind == "bpe":
        tk.save_tokenizer(tk.train_bpe(texts, vocab), out)
    elif kind == "char":
        tk.save_tokenizer(tk.train_char(texts, vocab), out)
    else:
        tk.load_tokenizer(base).hf.save_pretrained(str(out))  # type: ignore[arg-type]
    tok = tk.load_tokenizer(out)
    held_out = [r["text"] for r in rows["validation"] if r.get("text")] or texts
    stats = tk.measure(tok, held_out)
    typer.echo(
        f"{out}: {tok.vocab_size} tokens; on {stats.words} held-out words: "
        f"{stats.fertility:.3f} tokens/word, {stats.bytes_per_token:.2f} bytes/token"
    )


def _compare_tokenizers(data: list[Path], folders: list[Path], out: Path) -> None:
    from reports.training import render_tokenizers
    from trainer.tokenizer import compare

    writable_file(out)
    table = compare(folders, data)
    width = max(len(r["tokenizer"]) for r in table)
    typer.echo(
        f"{'language':<10} {'tokenizer':<{width}} {'tokens/word':>11} {'bytes/token':>11} "
        f"{'vocab used':>10}"
    )
    for r in table:
        typer.echo(
            f"{r['language']:<10} {r['tokenizer']:<{width}} {r['fertility']:>11.3f} "
            f"{r['bytes_per_token']:>11.2f} {r['vocab_used']:>10.1%}"
        )
    typer.echo(f"report   {render_tokenizers(table, out)}")


@app.command()
def prepare(
    data: Annotated[
        Path, typer.Argument(help="Factory dataset dir, .jsonl, .parquet, .csv or .txt")
    ],
    tokenizer: Annotated[
        Path, typer.Option(help="Tokenizer directory (ours or any Hugging Face one)")
    ],
    out: Annotated[Path, typer.Option(help="Directory for the token shards")],
    val_fraction: Annotated[
        float, typer.Option(help="Held-out share when the data has no validation split")
    ] = 0.05,
    dtype: Annotated[
        str | None, typer.Option(help="uint16 or uint32; chosen from the vocabulary if left out")
    ] = None,
) -> None:
    """Tokenize the `text` column into `<bos> text <eos>` token shards for training.

    Example: trainer prepare exports/hindi --tokenizer tok/hindi --out data/hindi
    """
    opts = check(PrepareOptions, given(val_fraction=val_fraction, dtype=dtype))
    writable_dir(out)
    from trainer.data import prepare as prepare_shards
    from trainer.tokenizer import load_tokenizer

    meta = prepare_shards(
        data, load_tokenizer(tokenizer), out, opts["val_fraction"], opts.get("dtype")
    )
    for name, split in meta["splits"].items():
        typer.echo(
            f"{name}: {split['documents']} documents, {split['tokens']} tokens ({meta['dtype']})"
        )


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="Output of `trainer prepare`")],
    out: Annotated[Path, typer.Option(help="Run directory, e.g. runs/hindi-20M")],
    init: Annotated[
        Path | None,
        typer.Option(help="Start from this run's weights (same tokenizer): continued pretraining"),
    ] = None,
    preset: Annotated[str | None, typer.Option(help="tiny, 5M, 20M, 53M or 150M")] = None,
    width: Annotated[int | None, typer.Option(help="Model width (overrides the preset's)")] = None,
    depth: Annotated[
        int | None, typer.Option(help="Number of blocks (overrides the preset's)")
    ] = None,
    heads: Annotated[
        int | None, typer.Option(help="Attention heads (overrides the preset's)")
    ] = None,
    block_size: Annotated[int | None, typer.Option(help="Context length in tokens")] = None,
    qk_norm: Annotated[
        bool | None, typer.Option(help="RMSNorm on q and k (exports as Qwen3)")
    ] = None,
    activation: Annotated[str | None, typer.Option(help="silu (SwiGLU) or gelu (GeGLU)")] = None,
    tie_embeddings: Annotated[
        bool | None, typer.Option(help="Share input and output embeddings")
    ] = None,
    dropout: Annotated[
        float | None, typer.Option(help="Dropout on attention and residual branches")
    ] = None,
    steps: Steps = None,
    batch_size: BatchSize = None,
    grad_accum: GradAccum = None,
    lr: Lr = None,
    warmup_steps: Warmup = None,
    weight_decay: Annotated[float | None, typer.Option(help="AdamW weight decay")] = None,
    optimizer: Annotated[
        str | None, typer.Option(help="adamw, or muon for the hidden matrices")
    ] = None,
    freeze: Freeze = None,
    eval_every: EvalEvery = None,
    checkpoint_every: CheckpointEvery = None,
    seed: Seed = None,
    compile: Annotated[bool | None, typer.Option(help="torch.compile the model")] = None,
    resume: Resume = False,
    stop_at: StopAt = None,
    track: Track = None,
    track_project: TrackProject = "kahani",
) -> None:
    """Pretrain a GPT; checkpoints and metrics go to --out, the final model to --out/hf.

    Example: trainer train --data data/hindi --preset 20M --steps 5000 --out runs/hindi-20M
    Continue another run on new data: trainer train --init runs/hindi-20M --data data/marathi ...
    Several processes: torchrun --nproc_per_node 2 -m trainer train --data ... --out ...
    """
    model_opts = given(
        preset=preset,
        width=width,
        depth=depth,
        heads=heads,
        block_size=block_size,
        qk_norm=qk_norm,
        activation=activation,
        tie_embeddings=tie_embeddings,
        dropout=dropout,
    )
    train_opts = given(
        steps=steps,
        batch_size=batch_size,
        grad_accum=grad_accum,
        lr=lr,
        warmup_steps=warmup_steps,
        weight_decay=weight_decay,
        optimizer=optimizer,
        freeze=freeze,
        eval_every=eval_every,
        checkpoint_every=checkpoint_every,
        seed=seed,
        compile=compile,
    )
    check(ModelOptions, model_opts)
    check(TrainConfig, train_opts)
    tracker = tracking(track, track_project)
    from trainer.train import pretrain

    pretrain(data, out, model_opts, train_opts, resume, stop_at, init, tracker)


FINE_TUNING = (
    "steps",
    "batch_size",
    "grad_accum",
    "lr",
    "warmup_steps",
    "freeze",
    "eval_every",
    "checkpoint_every",
    "seed",
)


def _training(options: dict[str, Any]) -> dict[str, Any]:
    """The training options a fine-tuning command shares (from its arguments), as the user
    gave them, checked against their bounds."""
    opts = given(**{name: options[name] for name in FINE_TUNING})
    check(TrainConfig, opts)
    return opts


@app.command()
def sft(
    init: Annotated[Path, typer.Option(help="A finished run (or its hf/ folder) to start from")],
    data: Annotated[Path, typer.Option(help="Conversations with a `messages` column")],
    out: Annotated[Path, typer.Option(help="Run directory for the fine-tuned model")],
    steps: Steps = None,
    batch_size: BatchSize = None,
    grad_accum: GradAccum = None,
    lr: Lr = None,
    warmup_steps: Warmup = None,
    freeze: Freeze = None,
    eval_every: EvalEvery = None,
    checkpoint_every: CheckpointEvery = None,
    seed: Seed = None,
    resume: Resume = False,
    stop_at: StopAt = None,
    track: Track = None,
    track_project: TrackProject = "kahani",
) -> None:
    """Fine-tune a pretrained run on conversations; loss only on the assistant's tokens.

    Example: trainer sft --init runs/hinglish-5M --data exports/chat --out runs/hinglish-chat
    """
    opts = _training(locals())
    tracker = tracking(track, track_project)
    from trainer.sft import sft as run_sft

    run_sft(init, data, out, opts, resume=resume, stop_at=stop_at, tracker=tracker)


@app.command()
def classify(
    init: Annotated[Path, typer.Option(help="A pretrained run (or its hf/ folder)")],
    data: Annotated[Path, typer.Option(help="Labelled texts: .jsonl, .parquet, .csv or a folder")],
    out: Annotated[Path, typer.Option(help="Run directory for the classifier")],
    text_column: Annotated[str, typer.Option(help="Column holding the text")] = "text",
    label_column: Annotated[str, typer.Option(help="Column holding the label")] = "label",
    val_fraction: Annotated[
        float, typer.Option(help="Held-out share when the data has no validation split")
    ] = 0.2,
    steps: Steps = None,
    batch_size: BatchSize = None,
    grad_accum: GradAccum = None,
    lr: Lr = None,
    warmup_steps: Warmup = None,
    freeze: Freeze = None,
    eval_every: EvalEvery = None,
    checkpoint_every: CheckpointEvery = None,
    seed: Seed = None,
    resume: Resume = False,
    stop_at: StopAt = None,
    track: Track = None,
    track_project: TrackProject = "kahani",
) -> None:
    """Fine-tune a pretrained GPT with a classification head on its last token; accuracy,
    macro-F1 and a confusion matrix on the held-out split; exported for
    AutoModelForSequenceClassification.

    Example: trainer classify --init runs/hi-tiny --data spam.jsonl --out runs/spam
    """
    split = check(SplitOptions, {"val_fraction": val_fraction})
    opts = _training(locals())
    tracker = tracking(track, track_project)
    from trainer.classify import classify as run_classify

    run_classify(
        init,
        data,
        out,
        opts,
        text_column,
        label_column,
        resume=resume,
        stop_at=stop_at,
        val_fraction=split["val_fraction"],
        tracker=tracker,
    )


@app.command()
def dpo(
    init: Annotated[Path, typer.Option(help="A fine-tuned run (or its hf/ folder)")],
    data: Annotated[
        Path,
        typer.Option(
            help="Preference pairs: prompt/chosen/rejected (text or messages), or judge "
            "verdicts prompt/completion_a/completion_b/winner"
        ),
    ],
    out: Annotated[Path, typer.Option(help="Run directory for the tuned model")],
    beta: Annotated[
        float | None, typer.Option(help="How far the policy may move from the reference")
    ] = None,
    chat: Annotated[
        bool | None,
        typer.Option(help="Text prompts as user turns, answers as assistant turns (default)"),
    ] = None,
    val_fraction: Annotated[
        float, typer.Option(help="Held-out share when the data has no validation split")
    ] = 0.2,
    steps: Steps = None,
    batch_size: BatchSize = None,
    grad_accum: GradAccum = None,
    lr: Lr = None,
    warmup_steps: Warmup = None,
    freeze: Freeze = None,
    eval_every: EvalEvery = None,
    checkpoint_every: CheckpointEvery = None,
    seed: Seed = None,
    resume: Resume = False,
    stop_at: StopAt = None,
    track: Track = None,
    track_project: TrackProject = "kahani",
) -> None:
    """Preference-tune a model with DPO against a frozen copy of itself; reward accuracy and
    margins logged; exported like SFT models.

    Example: trainer dpo --init runs/hinglish-chat --data pairs.jsonl --beta 0.1 --out runs/dpo
    """
    split = check(SplitOptions, {"val_fraction": val_fraction})
    opts = _training(locals())
    check(DPOSettings, given(beta=beta, chat=chat))
    tracker = tracking(track, track_project)
    from trainer.dpo import dpo as run_dpo

    run_dpo(
        init,
        data,
        out,
        opts,
        given(beta=beta, chat=chat),
        resume=resume,
        stop_at=stop_at,
        val_fraction=split["val_fraction"],
        tracker=tracker,
    )


@app.command()
def sweep(
    config: Annotated[Path, typer.Argument(help="A sweep file, .yaml or .toml")],
    out: Annotated[
        Path | None,
        typer.Option(help="Folder of the sweep (default: the file's `out`, or runs/<file name>)"),
    ] = None,
    worker: Annotated[
        str | None,
        typer.Option(
            help="I/N: run only trials I, I+N, ... (a job array); under torchrun each process "
            "takes its share by itself"
        ),
    ] = None,
) -> None:
    """Run a grid or random search of `trainer train` settings, one resumable run per trial,
    then print the trials sorted by validation bits per byte and name the best.

    Example: trainer sweep sweep.yaml
    Job array: trainer sweep sweep.yaml --worker $SLURM_ARRAY_TASK_ID/8
    """
    from trainer.sweep import run_sweep

    run_sweep(config, out, worker)


@app.command()
def report(
    runs: Annotated[
        list[Path], typer.Argument(help="Run folders (several overlay their curves) or a sweep")
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="HTML file (default: RUN/report.html for one run or a sweep)"),
    ] = None,
) -> None:
    """Write one self-contained HTML page with a run's curves (loss, bits per byte, learning
    rate, tokens/s), sample completions at each checkpoint, parameter counts and settings.

    Example: trainer report runs/hi-tiny runs/hi-from-marathi --out transfer.html
    """
    from reports.training import render_training
    from trainer.runinfo import load_runs

    loaded, default_out = load_runs(runs)
    path = writable_file(out or default_out)
    typer.echo(f"report   {render_training(loaded, path)}")


@app.command()
def sample(
    model: Annotated[Path, typer.Argument(help="A run directory or an exported hf/ folder")],
    prompt: Annotated[
        list[str] | None, typer.Option(help="Prompt text; repeat for several")
    ] = None,
    prompts: Annotated[
        Path | None, typer.Option(help="File with one prompt per line; # starts a comment")
    ] = None,
    samples: Annotated[int, typer.Option(help="Samples per prompt")] = 3,
    temperature: Annotated[float, typer.Option(help="0 picks the likeliest token")] = 0.8,
    top_k: Annotated[int | None, typer.Option(help="Sample among the k likeliest tokens")] = 50,
    max_tokens: Annotated[int, typer.Option(help="Cap on generated tokens per sample")] = 300,
    chat: Annotated[
        bool, typer.Option(help="Send each prompt as a user turn to a chat model")
    ] = False,
    jsonl: Annotated[bool, typer.Option(help="Print one JSON object per sample")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the sampling")] = 0,
) -> None:
    """Generate text from a trained model with a KV cache.

    Example: trainer sample runs/hindi-20M --prompt "एक दिन" --samples 3 --temperature 0.8
    """
    opts = check(
        SampleOptions,
        given(
            samples=samples, max_tokens=max_tokens, temperature=temperature, top_k=top_k, seed=seed
        ),
    )
    texts = list(prompt or [])
    if prompts is not None:
        if not prompts.is_file():
            raise KahaniError(
                f"--prompts {prompts} does not exist; give a file with one prompt per line"
            )
        texts += [
            line
            for line in prompts.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")  # the format of judge/prompts/*.txt
        ]
    import torch

    from trainer.export import load_hf
    from trainer.sample import generate, prompt_ids, stop_tokens

    net, tok = load_hf(model)
    generator = torch.Generator().manual_seed(opts["seed"])
    for text in texts or [""]:
        ids = prompt_ids(tok, text, chat)
        outs = generate(
            net,
            ids,
            opts["samples"],
            opts["max_tokens"],
            opts["temperature"],
            opts.get("top_k"),
            stop_tokens(tok),
            generator,
        )
        for i, ids_out in enumerate(outs):
            completion = tok.decode(ids_out)
            if jsonl:
                row = {"prompt": text, "index": i, "completion": completion}
                typer.echo(json.dumps(row, ensure_ascii=False))
            else:
                typer.echo(f"--- {i + 1}\n{completion if chat else text + completion}\n")


@app.command()
def export(
    checkpoint_dir: Annotated[Path, typer.Argument(help="runs/NAME/checkpoints/step_XXXXXXXX")],
    out: Annotated[Path, typer.Option(help="Folder for the Hugging Face files")],
    push_to_hub: Annotated[
        str | None,
        typer.Option(help="Also upload, with a model card, to this private Hub model repo."),
    ] = None,
) -> None:
    """Export one checkpoint of a language-model run to a Hugging Face folder.

    Example: trainer export runs/hindi-20M/checkpoints/step_00002000 --out exports/hindi-20M-2k
    """
    from trainer import checkpoint
    from trainer.export import export as export_hf
    from trainer.model import GPT, ModelConfig

    ckpt = checkpoint.verify(checkpoint_dir)
    if ckpt.state["spec"]["kind"] == "classify":
        raise KahaniError(
            "this is a classifier's checkpoint; its finished run exports itself to hf/"
        )
    writable_dir(out)
    model = GPT(ModelConfig.model_validate(ckpt.state["spec"]["model"]))
    checkpoint.load_model_tensors(model, ckpt.model_tensors())
    export_hf(model, checkpoint_dir.parent.parent / "tokenizer", out)
    typer.echo(f"exported step {ckpt.step} to {out}")
    if push_to_hub:
        from trainer.card import publish

        publish(out, checkpoint_dir, push_to_hub)


def main() -> None:
    run_cli(app)
