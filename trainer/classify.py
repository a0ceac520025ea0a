"""Sequence classification: a pretrained GPT read at its last token by a linear head.

A text becomes `<bos> text` (what the exported tokenizer produces, so transformers sees the
same ids), cut to the context length; the head reads the final hidden state of the last text
token, which has attended to the whole text. Rows are padded on the right; attention is
causal, so padding never reaches a real token. Held-out accuracy, macro-F1 and the confusion
matrix are measured at every evaluation and written to `classification.json` at the end.
"""

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from factory.errors import KahaniError
from trainer.data import Row, read_rows
from trainer.export import copy_tokenizer, export_classifier, hf_dir, load_hf
from trainer.model import GPT
from trainer.spec import ClassifySettings, RunSpec, TrainConfig
from trainer.tokenizer import TextTokenizer
from trainer.tracking import Tracking
from trainer.train import SAMPLE_PROMPTS, Dist, autocast, distributed, fit, open_run, saved_spec
from trainer.train import train_config as merge_train_config

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # ids (B, T), last index (B,), label (B,)
EVAL_BATCH = 64


class Classifier(nn.Module):
    """A GPT without its vocabulary head, and a linear layer from its width to the classes."""

    def __init__(self, gpt: GPT, num_labels: int) -> None:
        super().__init__()
        self.cfg = gpt.cfg
        gpt.lm_head = None  # type: ignore[assignment]  # classes, not next tokens
        self.gpt = gpt
        self.score = nn.Linear(gpt.cfg.d_model, num_labels, bias=False)
        nn.init.normal_(self.score.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """Ids (B, T) and each row's last real position (B,) -> class logits (B, K)."""
        hidden = self.gpt.hidden(idx)  # (B, T, C)
        return self.score(hidden[torch.arange(idx.size(0), device=idx.device), last])


class LabelledTexts:
    """Encoded texts with their class, padded per batch."""

    def __init__(self, examples: list[tuple[list[int], int]], pad_id: int) -> None:
        self.examples, self.pad_id = examples, pad_id

    def __len__(self) -> int:
        return len(self.examples)

    def collate(self, indices: list[int]) -> Batch:
        batch = [self.examples[i] for i in indices]
        T = max(len(ids) for ids, _ in batch)
        x = torch.full((len(batch), T), self.pad_id, dtype=torch.long)
        for row, (ids, _) in enumerate(batch):
            x[row, : len(ids)] = torch.tensor(ids)
        last = torch.tensor([len(ids) - 1 for ids, _ in batch])
        return x, last, torch.tensor([label for _, label in batch])


def confusion(predicted: torch.Tensor, true: torch.Tensor, k: int) -> torch.Tensor:
    """(K, K) counts, rows the true class and columns the predicted one."""
    return torch.bincount(true * k + predicted, minlength=k * k).view(k, k)


def scores(matrix: torch.Tensor) -> dict[str, Any]:
    """Accuracy, macro-F1 (every class weighs the same, so a rare class counts) and per class
    precision, recall and F1 from a confusion matrix."""
    m = matrix.double()
    hits, support, predicted = m.diag(), m.sum(1), m.sum(0)
    precision = torch.where(predicted > 0, hits / predicted.clamp(min=1), 0.0)
    recall = torch.where(support > 0, hits / support.clamp(min=1), 0.0)
    f1 = torch.where(
        precision + recall > 0, 2 * precision * recall / (precision + recall).clamp(min=1e-12), 0.0
    )
    return {
        "accuracy": (hits.sum() / m.sum().clamp(min=1)).item(),
        "macro_f1": f1.mean().item(),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": [int(s) for s in support.tolist()],
    }


class Classification:
    """Cross entropy on the class of each text; accuracy and macro-F1 on the held-out split."""

    def __init__(
        self,
        tok: TextTokenizer,
        labels: list[str],
        train: LabelledTexts,
        validation: LabelledTexts | None,
        texts: list[str],
        cfg: TrainConfig,
    ) -> None:
        self.tok, self.labels, self.cfg = tok, labels, cfg
        self.train, self.validation = train, validation
        self.texts = texts  # the held-out texts, for the predictions shown at checkpoints

    def counted(self, batch: Batch) -> int:
        return len(batch[2])

    def tokens(self, batch: Batch) -> int:
        return int((batch[0] != self.tok.pad_id).sum())

    def loss(
        self, net: nn.Module, batch: Batch, device: torch.device
    ) -> tuple[torch.Tensor, dict[str, float]]:
        x, last, y = (t.to(device) for t in batch)
        logits = net(x, last).float()  # (B, K)
        right = (logits.argmax(-1) == y).sum().item()
        return F.cross_entropy(logits, y, reduction="sum"), {"accuracy": right}

    @torch.no_grad()
    def predict(self, model: nn.Module, examples: LabelledTexts, d: Dist) -> tuple[Any, ...]:
        """This rank's share of `examples`: summed loss, confusion matrix, predictions."""
        model.eval()
        k = len(self.labels)
        mine = list(range(d.rank, len(examples), d.world))
        loss, matrix, predictions = 0.0, torch.zeros(k, k, dtype=torch.long), []
        for start in range(0, len(mine), EVAL_BATCH):
            x, last, y = (
                t.to(d.device) for t in examples.collate(mine[start : start + EVAL_BATCH])
            )
            with autocast(d.device):
                logits = model(x, last).float()
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            predicted = logits.argmax(-1)
            matrix += confusion(predicted.cpu(), y.cpu(), k)
            predictions += predicted.tolist()
        model.train()
        return loss, matrix, predictions

    def evaluate(self, model: nn.Module, d: Dist) -> dict[str, float]:
        assert self.validation is not None
        loss, matrix, _ = self.predict(model, self.validation, d)
        k = len(self.labels)
        total = d.sum([loss, *map(float, matrix.flatten().tolist())])
        result = scores(torch.tensor(total[1:]).view(k, k).long())
        return {
            "val_loss": total[0] / max(len(self.validation), 1),
            "val_accuracy": result["accuracy"],
            "val_macro_f1": result["macro_f1"],
        }

    def samples(self, model: nn.Module) -> list[dict[str, str]]:
        """The predicted class of the first held-out texts."""
        if self.validation is None:
            return []
        one = Dist(0, 1, next(model.parameters()).device)
        shown = LabelledTexts(self.validation.examples[:SAMPLE_PROMPTS], self.tok.pad_id)
        _, _, predicted = self.predict(model, shown, one)
        return [
            {
                "prompt": text,
                "completion": f"{self.labels[p]} (labelled {self.labels[label]})",
            }
            for text, p, (_, label) in zip(self.texts, predicted, shown.examples, strict=False)
        ]

    def finish(self, model: nn.Module, run_dir: Path) -> None:
        """classification.json with the held-out scores, and the exported folder."""
        import json

        if self.validation is not None:
            one = Dist(0, 1, next(model.parameters()).device)
            _, matrix, _ = self.predict(model, self.validation, one)
            result = scores(matrix)
            support = result["support"]
            majority = max(support) / max(sum(support), 1)
            report = {
                "labels": self.labels,
                "confusion": matrix.tolist(),
                "majority_accuracy": majority,
                **result,
            }
            (run_dir / "classification.json").write_text(json.dumps(report, indent=1))
            print(
                f"held-out: accuracy {result['accuracy']:.3f} (majority class {majority:.3f}), "
                f"macro-F1 {result['macro_f1']:.3f} on {sum(support)} texts",
                flush=True,
            )
            width = max(len(label) for label in [*self.labels, "true/predicted"]) + 2
            print("true/predicted".ljust(width) + " ".join(f"{c:>8}" for c in self.labels))
            for label, row in zip(self.labels, matrix.tolist(), strict=True):
                print(label.ljust(width) + " ".join(f"{n:>8}" for n in row))
        export_classifier(model, self.labels, run_dir / "tokenizer", run_dir / "hf")
        print(f"exported {run_dir / 'hf'}", flush=True)


def _label(row: Row, column: str, path: Path) -> str:
    value = row.get(column)
    if value is None or value == "":
        where = f"id {row['id']}" if row.get("id") is not None else f"{str(row)[:60]}"
        raise KahaniError(f"{path}: a row ({where}) has no '{column}'; label every row")
    return str(value)


def labelled(
    rows: dict[str, list[Row]], text_column: str, label_column: str, path: Path
) -> tuple[list[str], dict[str, list[tuple[str, str]]]]:
    """The sorted class names and (text, label) pairs per split, with one-line errors for a
    missing column or a single class."""
    for column in (text_column, label_column):
        if not any(column in r for r in rows["train"]):
            seen = sorted({k for r in rows["train"][:100] for k in r})
            flag = "--text-column" if column == text_column else "--label-column"
            raise KahaniError(
                f"{path} has no '{column}' column (columns: {', '.join(seen) or 'none'}); "
                f"name the right one with {flag}"
            )
    pairs = {
        split: [
            (str(r[text_column]), _label(r, label_column, path))
            for r in split_rows
            if r.get(text_column)
        ]
        for split, split_rows in rows.items()
    }
    labels = sorted({label for _, label in pairs["train"]})
    if len(labels) < 2:
        raise KahaniError(
            f"{path}: every training row has the label {labels[0]!r}; a classifier needs at "
            f"least two classes in '{label_column}'"
        )
    unseen = sorted({label for _, label in pairs["validation"]} - set(labels))
    if unseen:
        raise KahaniError(
            f"{path}: held-out label(s) {', '.join(unseen)} never occur in training; "
            "add training rows with them"
        )
    return labels, pairs


def classify(
    init: Path,
    data: Path,
    run_dir: Path,
    train_opts: dict[str, Any],
    text_column: str = "text",
    label_column: str = "label",
    resume: bool = False,
    stop_at: int | None = None,
    val_fraction: float = 0.2,
    tracker: Tracking | None = None,
) -> bool:
    """Fine-tune the exported model of run `init` to classify the texts of `data`."""
    gpt, tok = load_hf(init)
    labels, pairs = labelled(read_rows(data, val_fraction), text_column, label_column, data)
    prior = saved_spec(run_dir) if resume else None
    if prior and prior.classify and prior.classify.labels != labels:
        raise KahaniError(
            f"the data's classes ({', '.join(labels)}) differ from the run's "
            f"({', '.join(prior.classify.labels)}); use the run's data or a new --out"
        )
    defaults = TrainConfig(
        lr=5e-4, warmup_steps=10, steps=200, batch_size=16, eval_every=50, checkpoint_every=100
    ).model_dump()
    train_cfg = merge_train_config(prior, defaults, train_opts)
    spec = RunSpec(
        kind="classify",
        data=str(data),
        init=str(init),
        preset="from-init",
        model=gpt.cfg,
        train=train_cfg,
        classify=ClassifySettings(
            text_column=text_column, label_column=label_column, labels=labels
        ),
    )
    index = {label: i for i, label in enumerate(labels)}

    def encode(split: list[tuple[str, str]]) -> LabelledTexts:
        ids = tok.encode_batch([text for text, _ in split])
        block = gpt.cfg.block_size
        examples = [
            ([tok.bos_id, *t][:block], index[label])
            for t, (_, label) in zip(ids, split, strict=True)
        ]
        return LabelledTexts(examples, tok.pad_id)

    train_ex = encode(pairs["train"])
    val_ex = encode(pairs["validation"]) if pairs["validation"] else None
    with distributed() as d:
        ckpt = open_run(run_dir, spec, resume, d)
        if d.main:
            copy_tokenizer(hf_dir(init), run_dir / "tokenizer")
        torch.manual_seed(train_cfg.seed)  # the head's initial weights
        model = Classifier(gpt, len(labels))
        held_out = [text for text, _ in pairs["validation"]]
        task = Classification(tok, labels, train_ex, val_ex, held_out, train_cfg)
        return fit(run_dir, spec, model, task, ckpt, d, stop_at, tracker)
