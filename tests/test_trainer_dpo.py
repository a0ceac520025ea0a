"""DPO learns a preference the pairs carry, against a reference that stays frozen; pairs come
from prompt/chosen/rejected files, conversations or a judge's pairwise verdicts."""

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import assert_one_line_error, run_cli
from tests.trainer_helpers import corpus_rows
from trainer.dpo import Pairs, PreferenceTuning, answer_logps, dpo, encode_pairs, read_pairs
from trainer.export import load_hf
from trainer.spec import DPOSettings, RunSpec, TrainConfig
from trainer.train import Dist, fit

pytest_plugins = ["tests.trainer_helpers"]  # fixtures: tok_dir, hindi_data, pretrained_run

PAIRS = Path(__file__).resolve().parent / "fixtures" / "pairs"
QUICK = {"steps": 30, "lr": 1e-3, "batch_size": 8, "eval_every": 10, "checkpoint_every": 30}


@pytest.fixture(scope="module")
def polite_pairs(tmp_path_factory) -> Path:
    """Pairs whose chosen answer differs from the rejected one by a learnable feature: the
    same reply, opened politely or rudely."""
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    rows = []
    for row in corpus_rows("hinglish"):
        messages = row["messages"]
        reply = next(m["content"] for m in messages if m["role"] == "assistant")
        rows.append(
            {
                "id": row["id"],
                "prompt": messages[0]["content"],
                "chosen": f"Ji zaroor, dhanyavaad. {reply}",
                "rejected": f"Chup raho, bakwaas. {reply}",
            }
        )
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def rows_of(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_reward_accuracy_rises_and_the_log_ratio_moves_towards_the_chosen_answers(
    tmp_path, pretrained_run, polite_pairs
):
    out = tmp_path / "dpo"
    assert dpo(pretrained_run, polite_pairs, out, dict(QUICK), {"beta": 0.1})
    rows = rows_of(out)
    first = rows[0]  # the policy is the reference before its first update: no reward yet
    assert first["reward_margin"] == 0.0 and first["reward_accuracy"] == 0.0
    evals = [r for r in rows if "val_reward_accuracy" in r]
    assert [r["step"] for r in evals] == [10, 20, 30]
    assert evals[-1]["val_reward_accuracy"] > 0.5 and evals[-1]["val_reward_margin"] > 0

    # measured again from the exported model against the starting one, on held-out pairs
    policy, tok = load_hf(out)
    reference, _ = load_hf(pretrained_run)
    pairs, _ = read_pairs(polite_pairs, 0.2)
    held_out = Pairs(encode_pairs(tok, pairs["validation"], True, 64), tok.pad_id)
    x, y = held_out.collate(list(range(len(held_out))))
    with torch.no_grad():
        ratio = answer_logps(policy.eval(), x, y) - answer_logps(reference.eval(), x, y)
    chosen, rejected = ratio.chunk(2)
    assert (chosen - rejected).mean() > 0
    assert (chosen > rejected).float().mean() > 0.5


def test_the_reference_stays_frozen_while_the_policy_trains(tmp_path, pretrained_run):
    policy, tok = load_hf(pretrained_run)
    reference, _ = load_hf(pretrained_run)
    start = {k: v.clone() for k, v in reference.state_dict().items()}
    reference.requires_grad_(False)
    pairs, _ = read_pairs(PAIRS / "hinglish_polite.jsonl", 0.2)
    train = Pairs(encode_pairs(tok, pairs["train"], True, 64), tok.pad_id)
    cfg = TrainConfig(steps=4, batch_size=4, lr=1e-3, checkpoint_every=4, eval_every=4)
    spec = RunSpec(
        kind="dpo", data="pairs", preset="from-init", model=policy.cfg, train=cfg, dpo={}
    )
    task = PreferenceTuning(tok, reference, train, None, DPOSettings(), cfg)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "tokenizer").symlink_to(pretrained_run / "tokenizer")
    assert fit(tmp_path / "run", spec, policy, task, None, Dist(0, 1, torch.device("cpu")))
    for name, tensor in reference.state_dict().items():
        assert torch.equal(tensor, start[name]), name
    assert all(p.grad is None and not p.requires_grad for p in reference.parameters())
    assert not torch.equal(policy.blocks[0].mlp.down.weight, start["blocks.0.mlp.down.weight"])


def test_judge_verdicts_become_pairs_and_ties_are_skipped(tmp_path, pretrained_run):
    pairs, ties = read_pairs(PAIRS / "verdicts.jsonl", 0.0)
    assert ties == 1
    assert sorted(pairs["train"] + pairs["validation"]) == [
        ("एक दिन राजू", "बाज़ार गया और उसने आम ख़रीदे।", "बाज़ार बाज़ार बाज़ार।"),
        ("गाँव में", "एक बूढ़ा किसान रहता था।", "में में में"),
    ]
    result = run_cli(
        *("trainer", "dpo", "--init", str(pretrained_run), "--data", str(PAIRS / "verdicts.jsonl")),
        *("--no-chat", "--steps", "2", "--batch-size", "2", "--out", str(tmp_path / "story")),
    )
    assert result.returncode == 0, result.stderr
    assert "1 ties skipped" in result.stdout
    assert (tmp_path / "story" / "hf" / "model.safetensors").is_file()


def test_conversation_pairs_share_their_leading_turns_as_the_prompt(tmp_path):
    turns = [{"role": "user", "content": "kya haal hai?"}]
    row = {
        "chosen": [*turns, {"role": "assistant", "content": "Badhiya, aap sunaiye!"}],
        "rejected": [*turns, {"role": "assistant", "content": "Tumse matlab?"}],
    }
    path = tmp_path / "chat.jsonl"
    path.write_text(json.dumps(row) + "\n")
    pairs, _ = read_pairs(path, 0.0)  # a lone row is never held out
    assert pairs["train"] == [(turns, "Badhiya, aap sunaiye!", "Tumse matlab?")]


def test_bad_pairs_are_one_line_errors(tmp_path, pretrained_run):
    same = tmp_path / "same.jsonl"
    same.write_text(
        json.dumps({"id": "p0", "prompt": "hi", "chosen": "ok ji", "rejected": "hat"})
        + "\n"
        + json.dumps({"id": "p1", "prompt": "hi", "chosen": "ok", "rejected": "ok"})
        + "\n"
    )
    common = ["trainer", "dpo", "--init", str(pretrained_run), "--out", str(tmp_path / "o")]
    result = run_cli(*common, "--data", str(same))
    assert_one_line_error(result, "pair p1 has the same chosen and rejected answer")
    result = run_cli(*common, "--data", str(PAIRS / "hinglish_polite.jsonl"), "--beta", "0")
    assert_one_line_error(result, "--beta: input should be greater than 0")
    nothing = tmp_path / "stories.jsonl"
    nothing.write_text("".join(json.dumps({"id": i, "text": "ek kahani"}) + "\n" for i in "abc"))
    result = run_cli(*common, "--data", str(nothing))
    assert_one_line_error(result, "has no 'chosen' and 'rejected'")
