"""Training resumes exactly, survives damaged checkpoints, and splits over processes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM

from factory.errors import KahaniError
from tests.conftest import BIN, assert_one_line_error, run_cli
from tests.trainer_helpers import CORPUS, SMALL_TRAIN
from trainer import checkpoint
from trainer.train import pretrain

pytest_plugins = ["tests.trainer_helpers"]  # fixtures: tok_dir, hindi_data, pretrained_run

SHAPE = {"preset": "tiny", "block_size": 64}


def losses(run: Path) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in rows if "loss" in r]


def test_stop_at_20_and_resume_equals_an_uninterrupted_run(tmp_path, hindi_data, pretrained_run):
    split = tmp_path / "split"
    assert not pretrain(hindi_data, split, dict(SHAPE), dict(SMALL_TRAIN), stop_at=20)
    assert [s for s, _ in losses(split)] == list(range(1, 21))
    assert pretrain(hindi_data, split, {}, {}, resume=True)
    assert losses(split) == losses(pretrained_run)  # identical floats, all 40 steps


def test_truncated_latest_checkpoint_falls_back_to_the_previous_one(
    tmp_path, hindi_data, pretrained_run, capsys
):
    run = tmp_path / "run"
    pretrain(hindi_data, run, dict(SHAPE), dict(SMALL_TRAIN), stop_at=20)
    newest = run / "checkpoints" / "step_00000020" / checkpoint.MODEL_FILE
    newest.write_bytes(newest.read_bytes()[:100])
    assert checkpoint.latest(run).step == 10
    assert "step_00000020" in capsys.readouterr().err
    assert pretrain(hindi_data, run, {}, {}, resume=True)
    assert losses(run) == losses(pretrained_run)


def test_no_intact_checkpoint_is_an_error(tmp_path, hindi_data):
    run = tmp_path / "run"
    pretrain(hindi_data, run, dict(SHAPE), dict(SMALL_TRAIN, checkpoint_every=20), stop_at=20)
    ckpt = run / "checkpoints" / "step_00000020"
    (ckpt / checkpoint.OPTIM_FILE).write_bytes(b"")
    with pytest.raises(KahaniError, match=r"no checkpoint .* is intact"):
        checkpoint.latest(run)
    result = run_cli("trainer", "export", str(ckpt), "--out", str(tmp_path / "hf"))
    assert_one_line_error(result, "truncated or damaged")


def test_resume_with_another_model_shape_is_refused(tmp_path, hindi_data):
    run = tmp_path / "run"
    pretrain(hindi_data, run, dict(SHAPE), dict(SMALL_TRAIN), stop_at=10)
    result = run_cli(
        "trainer",
        "train",
        "--data",
        str(hindi_data),
        "--out",
        str(run),
        "--resume",
        "--preset",
        "5M",
    )
    assert_one_line_error(result, "resume changes the model shape", "n_layer 3 -> 6")
    result = run_cli("trainer", "train", "--data", str(hindi_data), "--out", str(run))
    assert_one_line_error(result, "already holds a run")


def test_muon_trains(tmp_path, hindi_data):
    run = tmp_path / "muon"
    pretrain(hindi_data, run, dict(SHAPE), dict(SMALL_TRAIN, steps=20, optimizer="muon"))
    steps = losses(run)
    assert steps[-1][1] < steps[0][1] - 1.0


def test_two_process_ddp_matches_one_process(tmp_path, hindi_data, pretrained_run):
    common = [
        "--data",
        str(hindi_data),
        "--preset",
        "tiny",
        "--block-size",
        "64",
        "--steps",
        "10",
        "--lr",
        "3e-3",
        "--warmup-steps",
        "5",
        "--eval-every",
        "10",
    ]
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "-m",
            "trainer",
            "train",
            *common,
            "--batch-size",
            "4",
            "--out",
            str(tmp_path / "ddp"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    single = subprocess.run(
        [
            str(BIN / "trainer"),
            "train",
            *common,
            "--batch-size",
            "4",
            "--grad-accum",
            "2",
            "--out",
            str(tmp_path / "one"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr
    ddp_losses, one_losses = losses(tmp_path / "ddp"), losses(tmp_path / "one")
    assert len(ddp_losses) == len(one_losses) == 10
    for (s1, a), (s2, b) in zip(ddp_losses, one_losses, strict=True):
        assert s1 == s2 and abs(a - b) < 1e-4


def test_cli_end_to_end_tokenizer_prepare_train_sample(tmp_path):
    data = str(CORPUS / "bangla.jsonl")
    steps = [
        ("tokenizer", data, "--vocab", "1500", "--out", "tok"),
        ("prepare", data, "--tokenizer", "tok", "--out", "data"),
        (
            "train",
            "--data",
            "data",
            "--preset",
            "tiny",
            "--block-size",
            "64",
            "--steps",
            "15",
            "--batch-size",
            "8",
            "--eval-every",
            "5",
            "--out",
            "runs/bn",
        ),
        (
            "sample",
            "runs/bn",
            "--prompt",
            "একদিন",
            "--samples",
            "2",
            "--max-tokens",
            "20",
            "--jsonl",
        ),
    ]
    for args in steps:
        result = run_cli("trainer", *args, cwd=tmp_path)
        assert result.returncode == 0, (args[0], result.stderr)
    samples = [json.loads(line) for line in result.stdout.splitlines()]
    assert [s["index"] for s in samples] == [0, 1]
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# openings, one per line\nএকদিন\n\nএকটি\n", encoding="utf-8")
    from_file = run_cli(
        "trainer",
        "sample",
        "runs/bn",
        "--prompts",
        str(prompts),
        "--samples",
        "1",
        "--max-tokens",
        "5",
        "--jsonl",
        cwd=tmp_path,
    )
    assert [json.loads(line)["prompt"] for line in from_file.stdout.splitlines()] == [
        "একদিন",
        "একটি",
    ]  # the comment line is no prompt
    run = tmp_path / "runs" / "bn"
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    } <= {p.name for p in (run / "hf").iterdir()}
    assert AutoModelForCausalLM.from_pretrained(str(run / "hf")).config.model_type == "llama"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("val_bpb" in r for r in rows)
