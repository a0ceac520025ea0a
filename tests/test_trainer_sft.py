"""SFT learns only the assistant's words, and continues a pretrained run."""

import json

import torch

from tests.conftest import assert_one_line_error, run_cli
from tests.trainer_helpers import CORPUS, corpus_rows
from trainer.batches import Conversations
from trainer.export import load_hf
from trainer.sft import encode_conversation, sft
from trainer.tokenizer import END, load_tokenizer

pytest_plugins = ["tests.trainer_helpers"]  # fixtures: tok_dir, hindi_data, pretrained_run


def test_only_assistant_tokens_and_their_end_token_carry_loss(tok_dir):
    tok = load_tokenizer(tok_dir)
    messages = corpus_rows("hinglish")[0]["messages"]
    ids, labels = encode_conversation(tok, messages, 10_000)
    learned = [t for t in labels if t != -100]
    expected = []
    for m, content in zip(
        messages, tok.encode_batch([m["content"] for m in messages]), strict=True
    ):
        if m["role"] == "assistant":
            expected += [*content, tok.special_id(END)]
    assert learned == expected and learned
    x, y = Conversations([(ids, labels), (ids[:5], labels[:5])], tok.pad_id).collate([0, 1])
    assert x.shape == y.shape == (2, len(ids) - 1)
    assert (x[1, 4:] == tok.pad_id).all() and (y[1, 4:] == -100).all()  # padding gives no loss
    assert y[0].tolist() == labels[1:]


def test_sft_continues_a_pretrained_run_with_frozen_lower_layers(tmp_path, pretrained_run):
    before, _ = load_hf(pretrained_run)
    out = tmp_path / "chat"
    assert sft(
        pretrained_run,
        CORPUS / "hinglish.jsonl",
        out,
        {"steps": 8, "batch_size": 4, "eval_every": 4, "freeze": "blocks:0", "lr": 1e-3},
    )
    after, _ = load_hf(out)
    assert torch.equal(before.blocks[0].mlp.down.weight, after.blocks[0].mlp.down.weight)
    assert not torch.equal(before.blocks[2].mlp.down.weight, after.blocks[2].mlp.down.weight)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("val_loss" in r for r in rows)
    result = run_cli(
        "trainer",
        "sample",
        str(out),
        "--chat",
        "--prompt",
        "kya haal hai?",
        "--samples",
        "1",
        "--max-tokens",
        "10",
    )
    assert result.returncode == 0, result.stderr


def test_sft_without_messages_is_a_one_line_error(tmp_path, pretrained_run):
    result = run_cli(
        "trainer",
        "sft",
        "--init",
        str(pretrained_run),
        "--data",
        str(CORPUS / "hindi.jsonl"),
        "--out",
        str(tmp_path / "x"),
    )
    assert_one_line_error(result, "no 'messages' column")
