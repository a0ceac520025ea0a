"""`trainer`: tokenizers and small GPT models from factory datasets."""

import json
from pathlib import Path
from typing import Annotated, Any

import torch
import typer

from factory.errors import KahaniError, run_cli

app = typer.Typer(
    help="Train tokenizers and small GPT models on factory datasets, export them to "
    "Hugging Face format and sample from them.",
    pretty_exceptions_enable=False,
    add_completion=False,
    no_args_is_help=True,
)


def _given(**options: Any) -> dict[str, Any]:
    """The options the user set (None means: keep the default, or the resumed run's value)."""
    return {k: v for k, v in options.items() if v is not None}


@app.command()
def tokenizer(
    data: Annotated[Path, typer.Argument(help="Factory dataset dir, .jsonl, .parquet or .txt")],
    out: Annotated[Path, typer.Option(help="Directory for tokenizer.json and its config")],
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
) -> None:
    """Train a tokenizer on the `text` column and print fertility and bytes per token.

    Example: trainer tokenizer exports/hindi --vocab 8000 --out tok/hindi
    """
    from trainer import tokenizer as tk
    from trainer.data import column, read_rows

    rows = read_rows(data, val_fraction)
    texts = column(rows["train"], "text", data)
    if kind == "bpe":
        tk.save_tokenizer(tk.train_bpe(texts, vocab), out)
    elif kind == "char":
        tk.save_tokenizer(tk.train_char(texts, vocab), out)
    elif kind == "hf":
        if base is None:
            raise KahaniError("--kind hf needs --base DIR, a directory holding a tokenizer.json")
        tk.load_tokenizer(base).hf.save_pretrained(str(out))
    else:
        raise KahaniError(f"unknown --kind {kind!r}; use bpe, char or hf")
    tok = tk.load_tokenizer(out)
    held_out = [r["text"] for r in rows["validation"] if r.get("text")] or texts
    stats = tk.measure(tok, held_out)
    typer.echo(
        f"{out}: {tok.vocab_size} tokens; on {stats.words} held-out words: "
        f"{stats.fertility:.3f} tokens/word, {stats.bytes_per_token:.2f} bytes/token"
    )


@app.command()
def prepare(
    data: Annotated[Path, typer.Argument(help="Factory dataset dir, .jsonl, .parquet or .txt")],
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
    from trainer.data import prepare as prepare_shards
    from trainer.tokenizer import load_tokenizer

    meta = prepare_shards(data, load_tokenizer(tokenizer), out, val_fraction, dtype)
    for name, split in meta["splits"].items():
        typer.echo(
            f"{name}: {split['documents']} documents, {split['tokens']} tokens ({meta['dtype']})"
        )


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="Output of `trainer prepare`")],
    out: Annotated[Path, typer.Option(help="Run directory, e.g. runs/hindi-20M")],
    preset: Annotated[str | None, typer.Option(help="tiny, 5M, 20M, 53M or 150M")] = None,
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
    steps: Annotated[int | None, typer.Option(help="Total optimizer steps")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Sequences per process per micro-step")
    ] = None,
    grad_accum: Annotated[int | None, typer.Option(help="Micro-steps per optimizer step")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate")] = None,
    warmup_steps: Annotated[
        int | None, typer.Option(help="Linear warmup (default: the first 5% of steps)")
    ] = None,
    weight_decay: Annotated[float | None, typer.Option()] = None,
    optimizer: Annotated[
        str | None, typer.Option(help="adamw, or muon for the hidden matrices")
    ] = None,
    eval_every: Annotated[int | None, typer.Option()] = None,
    checkpoint_every: Annotated[int | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    compile: Annotated[bool | None, typer.Option(help="torch.compile the model")] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue from the newest intact checkpoint")
    ] = False,
    stop_at: Annotated[
        int | None, typer.Option(help="Checkpoint and stop at this step (split a run into jobs)")
    ] = None,
) -> None:
    """Pretrain a GPT; checkpoints and metrics go to --out, the final model to --out/hf.

    Example: trainer train --data data/hindi --preset 20M --steps 5000 --out runs/hindi-20M
    Several processes: torchrun --nproc_per_node 2 -m trainer train --data ... --out ...
    """
    from trainer.train import pretrain

    model_opts = _given(
        preset=preset,
        block_size=block_size,
        qk_norm=qk_norm,
        activation=activation,
        tie_embeddings=tie_embeddings,
        dropout=dropout,
    )
    train_opts = _given(
        steps=steps,
        batch_size=batch_size,
        grad_accum=grad_accum,
        lr=lr,
        warmup_steps=warmup_steps,
        weight_decay=weight_decay,
        optimizer=optimizer,
        eval_every=eval_every,
        checkpoint_every=checkpoint_every,
        seed=seed,
        compile=compile,
    )
    if (model_opts.get("preset") or "tiny") not in _presets():
        raise KahaniError(
            f"unknown --preset {model_opts['preset']!r}; use one of {', '.join(_presets())}"
        )
    pretrain(data, out, model_opts, train_opts, resume=resume, stop_at=stop_at)


def _presets() -> list[str]:
    from trainer.model import PRESETS

    return list(PRESETS)


@app.command()
def sft(
    init: Annotated[Path, typer.Option(help="A finished run (or its hf/ folder) to start from")],
    data: Annotated[Path, typer.Option(help="Conversations with a `messages` column")],
    out: Annotated[Path, typer.Option(help="Run directory for the fine-tuned model")],
    steps: Annotated[int | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    grad_accum: Annotated[int | None, typer.Option()] = None,
    lr: Annotated[float | None, typer.Option()] = None,
    warmup_steps: Annotated[int | None, typer.Option()] = None,
    freeze_layers: Annotated[
        int | None, typer.Option(help="Keep the lowest N blocks fixed")
    ] = None,
    eval_every: Annotated[int | None, typer.Option()] = None,
    checkpoint_every: Annotated[int | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue from the newest intact checkpoint")
    ] = False,
    stop_at: Annotated[int | None, typer.Option(help="Checkpoint and stop at this step")] = None,
) -> None:
    """Fine-tune a pretrained run on conversations; loss only on the assistant's tokens.

    Example: trainer sft --init runs/hinglish-5M --data exports/chat --out runs/hinglish-chat
    """
    from trainer.sft import sft as run_sft

    opts = _given(
        steps=steps,
        batch_size=batch_size,
        grad_accum=grad_accum,
        lr=lr,
        warmup_steps=warmup_steps,
        freeze_layers=freeze_layers,
        eval_every=eval_every,
        checkpoint_every=checkpoint_every,
        seed=seed,
    )
    run_sft(init, data, out, opts, resume=resume, stop_at=stop_at)


@app.command()
def sample(
    model: Annotated[Path, typer.Argument(help="A run directory or an exported hf/ folder")],
    prompt: Annotated[
        list[str] | None, typer.Option(help="Prompt text; repeat for several")
    ] = None,
    prompts_file: Annotated[
        Path | None, typer.Option(help="One prompt per line; # starts a comment")
    ] = None,
    n: Annotated[int, typer.Option(help="Samples per prompt")] = 3,
    temperature: Annotated[float, typer.Option(help="0 picks the likeliest token")] = 0.8,
    top_k: Annotated[int | None, typer.Option(help="Sample among the k likeliest tokens")] = 50,
    max_new_tokens: Annotated[int, typer.Option()] = 300,
    chat: Annotated[
        bool, typer.Option(help="Send each prompt as a user turn to a chat model")
    ] = False,
    jsonl: Annotated[bool, typer.Option(help="Print one JSON object per sample")] = False,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Generate text from a trained model with a KV cache.

    Example: trainer sample runs/hindi-20M --prompt "एक दिन" --n 3 --temperature 0.8
    """
    from trainer.export import load_hf
    from trainer.sample import generate, prompt_ids, stop_tokens

    prompts = list(prompt or [])
    if prompts_file is not None:
        if not prompts_file.is_file():
            raise KahaniError(
                f"{prompts_file} does not exist; give a file with one prompt per line"
            )
        prompts += [
            line
            for line in prompts_file.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")  # the format of judge/prompts/*.txt
        ]
    if n < 1 or max_new_tokens < 1:
        raise KahaniError("--n and --max-new-tokens must be at least 1")
    net, tok = load_hf(model)
    generator = torch.Generator().manual_seed(seed)
    for text in prompts or [""]:
        ids = prompt_ids(tok, text, chat)
        for i, out in enumerate(
            generate(net, ids, n, max_new_tokens, temperature, top_k, stop_tokens(tok), generator)
        ):
            completion = tok.decode(out)
            if jsonl:
                typer.echo(
                    json.dumps(
                        {"prompt": text, "index": i, "completion": completion}, ensure_ascii=False
                    )
                )
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
    """Export one checkpoint of a run to a Hugging Face folder.

    Example: trainer export runs/hindi-20M/checkpoints/step_00002000 --out exports/hindi-20M-2k
    """
    from trainer import checkpoint
    from trainer.export import export as export_hf
    from trainer.model import GPT, ModelConfig

    ckpt = checkpoint.verify(checkpoint_dir)
    model = GPT(ModelConfig.model_validate(ckpt.state["spec"]["model"]))
    checkpoint.load_model_tensors(model, ckpt.model_tensors())
    export_hf(model, checkpoint_dir.parent.parent / "tokenizer", out)
    typer.echo(f"exported step {ckpt.step} to {out}")
    if push_to_hub:
        from trainer.card import publish

        publish(out, checkpoint_dir, push_to_hub)


def main() -> None:
    run_cli(app)
