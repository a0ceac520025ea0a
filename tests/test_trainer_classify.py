"""A classification head on a pretrained GPT learns spam from ham, resumes exactly, and its
export predicts the same labels under transformers' AutoModelForSequenceClassification."""

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from tests.conftest import assert_one_line_error, run_cli
from trainer import checkpoint
from trainer.classify import Classifier, LabelledTexts, classify, labelled
from trainer.data import read_rows
from trainer.export import load_hf

pytest_plugins = ["tests.trainer_helpers"]  # fixtures: tok_dir, hindi_data, pretrained_run

SPAM = Path(__file__).resolve().parent / "fixtures" / "classify" / "spam.jsonl"
QUICK = {"steps": 60, "lr": 3e-4, "eval_every": 20, "checkpoint_every": 20, "batch_size": 16}


@pytest.fixture(scope="module")
def spam_run(tmp_path_factory, pretrained_run) -> Path:
    out = tmp_path_factory.mktemp("classify") / "spam"
    assert classify(pretrained_run, SPAM, out, dict(QUICK))
    return out


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_the_classifier_beats_the_majority_class_clearly_on_held_out_messages(spam_run):
    result = json.loads((spam_run / "classification.json").read_text())
    assert result["labels"] == ["ham", "spam"]
    assert sum(result["support"]) == sum(map(sum, result["confusion"])) >= 20
    assert result["accuracy"] >= result["majority_accuracy"] + 0.15, result
    assert result["macro_f1"] > 0.6
    evals = [r for r in metrics(spam_run) if "val_accuracy" in r]
    assert [r["step"] for r in evals] == [20, 40, 60]


def test_the_export_loads_without_remote_code_and_predicts_the_same_labels(
    spam_run, pretrained_run
):
    hf = AutoModelForSequenceClassification.from_pretrained(str(spam_run / "hf")).eval()
    assert type(hf).__name__ == "LlamaForSequenceClassification"
    assert hf.config.id2label == {0: "ham", 1: "spam"}
    hf_tok = AutoTokenizer.from_pretrained(str(spam_run / "hf"))
    _, pairs = labelled(read_rows(SPAM, 0.2), "text", "label", SPAM)
    texts = [text for text, _ in pairs["validation"]]
    inputs = hf_tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hf_logits = hf(**inputs).logits  # (N, 2)

    # the same texts through our own model, rebuilt from the last checkpoint
    gpt, tok = load_hf(pretrained_run)
    ours = Classifier(gpt, 2)
    checkpoint.load_model_tensors(ours, checkpoint.latest(spam_run).model_tensors())
    ids = [[tok.bos_id, *t] for t in tok.encode_batch(texts)]
    x, last, _ = LabelledTexts([(i, 0) for i in ids], tok.pad_id).collate(list(range(len(ids))))
    with torch.no_grad():
        our_logits = ours.eval()(x, last)
    assert (hf_logits - our_logits).abs().max().item() < 1e-4
    assert hf_logits.argmax(-1).tolist() == our_logits.argmax(-1).tolist()
    truth = [hf.config.label2id[label] for _, label in pairs["validation"]]
    hits = sum(p == t for p, t in zip(hf_logits.argmax(-1).tolist(), truth, strict=True))
    result = json.loads((spam_run / "classification.json").read_text())
    assert hits / len(truth) == pytest.approx(result["accuracy"])
    # a causal-LM loader refuses the folder rather than building a language model from it
    result = run_cli("trainer", "sample", str(spam_run), "--max-tokens", "3")
    assert_one_line_error(result, "holds a classifier")


def test_stopped_and_resumed_classification_matches_the_uninterrupted_run(
    tmp_path, pretrained_run, spam_run
):
    out = tmp_path / "split"
    assert not classify(pretrained_run, SPAM, out, dict(QUICK), stop_at=20)
    assert classify(pretrained_run, SPAM, out, {}, resume=True)

    def trace(run: Path) -> list[tuple]:
        return [(r["step"], r.get("loss"), r.get("val_accuracy")) for r in metrics(run)]

    assert trace(out) == trace(spam_run)  # identical floats, all 60 steps


def test_frozen_parts_are_bit_identical_after_training(tmp_path, pretrained_run):
    before, _ = load_hf(pretrained_run)
    out = tmp_path / "frozen"
    quick = dict(QUICK, steps=6, eval_every=6, freeze="embeddings,blocks:0-1")
    assert classify(pretrained_run, SPAM, out, quick)
    after = Classifier(load_hf(pretrained_run)[0], 2)
    checkpoint.load_model_tensors(after, checkpoint.latest(out).model_tensors())
    assert torch.equal(before.embed.weight, after.gpt.embed.weight)
    for i in (0, 1):
        for (name, p), q in zip(
            before.blocks[i].named_parameters(), after.gpt.blocks[i].parameters(), strict=True
        ):
            assert torch.equal(p, q), name
    assert not torch.equal(before.blocks[2].mlp.down.weight, after.gpt.blocks[2].mlp.down.weight)


def test_classification_prints_its_trainable_parameters(tmp_path, pretrained_run):
    result = run_cli(
        *("trainer", "classify", "--init", str(pretrained_run), "--data", str(SPAM)),
        *("--out", str(tmp_path / "head"), "--freeze", "all-but-head", "--steps", "2"),
    )
    assert result.returncode == 0, result.stderr
    head_params = 96 + 2 * 96  # the final norm and the 2-class score layer of the tiny preset
    assert f"trainable parameters: {head_params:,} of" in result.stdout
    assert "held-out: accuracy" in result.stdout


def test_bad_labelled_data_is_a_one_line_error(tmp_path, pretrained_run):
    one_class = tmp_path / "one.csv"
    one_class.write_text("text,label\nnamaste,ham\nkya haal,ham\nchalo,ham\n", encoding="utf-8")
    common = ["trainer", "classify", "--init", str(pretrained_run), "--out", str(tmp_path / "o")]
    assert_one_line_error(
        run_cli(*common, "--data", str(one_class)), "a classifier needs at least two classes"
    )
    result = run_cli(*common, "--data", str(SPAM), "--label-column", "category")
    assert_one_line_error(result, "no 'category' column", "--label-column")
    result = run_cli(*common, "--data", str(SPAM), "--freeze", "blocks:0-7")
    assert_one_line_error(result, "the model has 3 blocks")
    result = run_cli(*common, "--data", str(SPAM), "--freeze", "lm_head")
    assert_one_line_error(result, "--freeze: unknown part 'lm_head'")
    result = run_cli(*common, "--data", str(SPAM), "--val-fraction", "0.9")
    assert_one_line_error(result, "--val-fraction")
