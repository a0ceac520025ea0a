"""The model card of an exported model (its `README.md`), and publishing it with the model.

`trainer export CHECKPOINT --out DIR --push-to-hub REPO` writes DIR/README.md and uploads the
folder to a private Hub repository (`factory.hub`). The card states what a user needs to
trust the model: architecture and size, tokenizer, training data and tokens seen, validation
bits per byte at that step, and the `judge score` results when an evaluation of the model
exists (`runs/eval-<name>/summary.json`, as `judge score` writes it by default).
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from factory.errors import KahaniError
from factory.languages import LANGUAGES
from trainer import checkpoint

# The exported folder's files on the Hub: weights, configs, tokenizer, chat template, card.
MODEL_FILES = ["*.json", "*.safetensors", "*.jinja", "README.md"]


@dataclass(frozen=True)
class Evaluation:
    """The headline of a `judge score` summary: what the card shows."""

    folder: Path
    language: str
    completions: int
    prompts: int
    judge: str | None  # provider:model
    rows: list[tuple[str, float, float | None, float | None]]  # name, mean, low, high


@dataclass(frozen=True)
class CardFacts:
    repo: str
    architecture: str  # the Hugging Face class family: Llama or Qwen3
    config: dict[str, Any]  # config.json
    parameters: int
    tokenizer: str
    kind: str  # pretrain or sft
    data: str  # what it was trained on
    step: int
    tokens_seen: int
    per_step: str  # how tokens_seen was counted
    validation: tuple[int, float, float] | None  # step, loss, bits per byte
    evaluation: Evaluation | None


def parameters(weights: Path) -> int:
    """Parameters stored in a safetensors file (tied embeddings are stored once)."""
    from safetensors import safe_open

    with safe_open(str(weights), "pt") as f:
        total = 0
        for name in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
            count = 1
            for size in f.get_slice(name).get_shape():
                count *= size
            total += count
    return total


def describe_tokenizer(folder: Path) -> str:
    data = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    model = data.get("model", {})
    tokens = set(model.get("vocab", {})) | {t["content"] for t in data.get("added_tokens", [])}
    size = len(tokens)
    kind = model.get("type", "unknown")
    if kind == "BPE" and model.get("byte_fallback"):
        kind = "byte-fallback BPE"
    return f"{kind}, {size:,} tokens (tokenizer.json in this repository)"


def last_validation(run_dir: Path, step: int) -> tuple[int, float, float] | None:
    """(step, val_loss, val_bpb) of the last evaluation at or before `step`."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    found = None
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line) if line.strip() else {}
        if "val_bpb" in row and row.get("step", step + 1) <= step:
            found = (row["step"], row["val_loss"], row["val_bpb"])
    return found


def training_data(spec: dict[str, Any]) -> str:
    """Where the run's tokens came from, from its token shards' meta.json."""
    data = Path(spec["data"])
    meta_path = data / "meta.json"
    if spec.get("kind") == "sft":
        init = Path(str(spec.get("init"))).name
        return f"conversations from `{data.name}`, fine-tuned from `{init}`"
    if not meta_path.is_file():
        return f"`{data.name}`"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    source = Path(meta.get("source", data))
    shown = source.name if source.is_absolute() else source  # no local paths in a public card
    train = meta.get("splits", {}).get("train", {})
    valid = meta.get("splits", {}).get("validation", {})
    return (
        f"`{shown}`: {train.get('tokens', 0):,} training tokens in "
        f"{train.get('documents', 0):,} documents, {valid.get('tokens', 0):,} validation tokens"
    )


def find_evaluation(names: list[str], runs: Path = Path("runs")) -> Evaluation | None:
    """The `judge score` summary of the first of `names` that has one (runs/eval-<name>).

    Read as the JSON `judge score` writes (ARCHITECTURE.md, "Evaluations"): trainer does not
    import judge, so only the documented headline fields are used."""
    for name in names:
        folder = runs / f"eval-{name}"
        try:
            summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if summary.get("model") != name:
            continue
        rows: list[tuple[str, float, float | None, float | None]] = []
        judge = summary.get("judge") or {}
        for dimension, entry in (judge.get("dimensions") or {}).items():
            if entry.get("mean") is not None:
                rows.append((f"judge {dimension}", entry["mean"], entry["low"], entry["high"]))
        for metric, entry in (summary.get("metrics") or {}).items():
            if entry.get("mean") is not None and not entry.get("skipped"):
                rows.append((metric, entry["mean"], entry.get("low"), entry.get("high")))
        return Evaluation(
            folder=folder,
            language=summary.get("language", ""),
            completions=summary.get("completions", 0),
            prompts=summary.get("prompts", 0),
            judge=f"{judge['provider']}:{judge['model']}" if judge else None,
            rows=rows,
        )
    return None


def gather(hf_dir: Path, checkpoint_dir: Path, repo: str) -> CardFacts:
    """What the card says about the model exported from `checkpoint_dir` into `hf_dir`."""
    ckpt = checkpoint.verify(checkpoint_dir)
    spec = ckpt.state["spec"]
    train = spec["train"]
    run_dir = checkpoint_dir.parent.parent
    config = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    per_step = train["batch_size"] * train.get("grad_accum", 1) * spec["model"]["block_size"]
    names = [hf_dir.name]
    if ckpt.step >= train["steps"]:  # the run's last step: its own evaluation is of this model
        names.append(run_dir.name)
    return CardFacts(
        repo=repo,
        architecture="Qwen3" if config.get("model_type") == "qwen3" else "Llama",
        config=config,
        parameters=parameters(hf_dir / "model.safetensors"),
        tokenizer=describe_tokenizer(hf_dir),
        kind=spec["kind"],
        data=training_data(spec),
        step=ckpt.step,
        tokens_seen=ckpt.step * per_step,
        per_step=(
            f"{train['batch_size']} sequences x {train.get('grad_accum', 1)} accumulation "
            f"x {spec['model']['block_size']} tokens per step, per process"
        ),
        validation=last_validation(run_dir, ckpt.step),
        evaluation=find_evaluation(names),
    )


def _size(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}K"


def render(facts: CardFacts) -> str:
    """The card: a Hub YAML header, then the facts as a table and the evaluation."""
    c, ev = facts.config, facts.evaluation
    header: dict[str, Any] = {
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["kahani", "pretrained" if facts.kind == "pretrain" else "sft"],
    }
    if ev and ev.language in LANGUAGES:
        header["language"] = [LANGUAGES[ev.language].code.split("-")[0]]
    what = "pretrained from scratch" if facts.kind == "pretrain" else "fine-tuned on conversations"
    lines = [
        "---",
        yaml.safe_dump(header, allow_unicode=True, sort_keys=False).strip(),
        "---",
        "",
        f"# {facts.repo.split('/')[-1]}",
        "",
        f"A {_size(facts.parameters)}-parameter {facts.architecture} language model {what} "
        "with kahani.",
        "",
        "| | |",
        "| --- | --- |",
        f"| architecture | {facts.architecture}: {c.get('num_hidden_layers')} layers, width "
        f"{c.get('hidden_size')}, {c.get('num_attention_heads')} heads, context "
        f"{c.get('max_position_embeddings')} tokens |",
        f"| parameters | {facts.parameters:,} |",
        f"| tokenizer | {facts.tokenizer} |",
        f"| training data | {facts.data} |",
        f"| training | {facts.step:,} steps, {facts.tokens_seen:,} tokens seen "
        f"({facts.per_step}) |",
    ]
    if facts.validation:
        step, loss, bpb = facts.validation
        lines.append(f"| validation | {bpb:.4f} bits per byte (loss {loss:.4f}) at step {step:,} |")
    else:
        lines.append("| validation | not measured |")
    lines.append("")
    if ev:
        judged = f", judged by {ev.judge}" if ev.judge else ", offline metrics only"
        lines += [
            "## Evaluation",
            "",
            f"`judge score` on {ev.prompts:,} {ev.language} prompts, {ev.completions:,} "
            f"completions{judged}; means with 95% bootstrap intervals.",
            "",
            "| score | mean | 95% interval |",
            "| --- | ---: | --- |",
            *[
                f"| {name} | {mean:.3f} | "
                + (f"[{low:.3f}, {high:.3f}]" if low is not None and high is not None else "")
                + " |"
                for name, mean, low, high in ev.rows
            ],
            "",
        ]
    else:
        lines += ["## Evaluation", "", "Not evaluated yet (`judge score`).", ""]
    lines += [
        "## Use",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        f'tokenizer = AutoTokenizer.from_pretrained("{facts.repo}")',
        f'model = AutoModelForCausalLM.from_pretrained("{facts.repo}")',
        "```",
    ]
    return "\n".join(lines) + "\n"


def publish(hf_dir: Path, checkpoint_dir: Path, repo: str) -> str:
    """Write `hf_dir`/README.md and push the folder to the Hub; returns the repository URL."""
    from factory.hub import hub_token, push_folder

    hub_token()  # no token: fail before writing anything
    card = render(gather(hf_dir, checkpoint_dir, repo))
    try:
        (hf_dir / "README.md").write_text(card, encoding="utf-8")
    except OSError as err:
        raise KahaniError(f"cannot write {hf_dir / 'README.md'}: {err.strerror}") from None
    return push_folder(hf_dir, repo, "model", MODEL_FILES, "Upload model with kahani")
