"""The trainer's command line: bounds on every option, one-line errors for folders that cannot
be written and data given in the wrong form, Ctrl-C that checkpoints and exits 130, a version,
and transfer from another run's weights with chosen parts frozen."""

import json
import signal
import subprocess
import time

import pytest
import torch

from tests.conftest import BIN, assert_one_line_error, run_cli
from tests.trainer_helpers import CORPUS
from trainer.export import load_hf

pytest_plugins = ["tests.trainer_helpers"]  # fixtures: tok_dir, hindi_data, pretrained_run


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--steps", "0"], "--steps: input should be greater than 0 (got 0)"),
        (["--batch-size", "-1"], "--batch-size: input should be greater than 0"),
        (["--lr", "0"], "--lr: input should be greater than 0"),
        (["--dropout", "1.5"], "--dropout: input should be less than 1"),
        (["--block-size", "1"], "--block-size: input should be greater than 1"),
        (["--optimizer", "sgd"], "--optimizer: input should be 'adamw' or 'muon'"),
        (["--preset", "7B"], "--preset: input should be 'tiny', '5M'"),
        (["--activation", "relu"], "--activation: input should be 'silu' or 'gelu'"),
        (["--warmup-steps", "-5"], "--warmup-steps: input should be greater than or equal to 0"),
        (["--eval-every", "0"], "--eval-every: input should be greater than 0"),
        (["--freeze", "blocks:3-1"], "--freeze: 'blocks:3-1' runs backwards"),
        (["--width", "100", "--heads", "3"], "must split into 3 heads of an even size"),
        (["--track", "mlflow"], "unknown --track 'mlflow'"),
    ],
)
def test_out_of_range_train_options_are_one_line_errors(tmp_path, hindi_data, args, fragment):
    result = run_cli(
        "trainer", "train", "--data", str(hindi_data), "--out", "r", *args, cwd=tmp_path
    )
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "r" / "hf").exists()  # nothing trained, nothing exported


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["sample", "RUN", "--samples", "0"], "--samples: input should be greater than 0"),
        (["sample", "RUN", "--max-tokens", "0"], "--max-tokens: input should be greater than 0"),
        (["sample", "RUN", "--temperature", "-1"], "--temperature: input should be greater"),
        (["sample", "RUN", "--top-k", "0"], "--top-k: input should be greater than 0"),
        (["sample", "RUN", "--prompts", "nowhere.txt"], "--prompts nowhere.txt does not exist"),
        (["tokenizer", "DATA", "--out", "t", "--vocab", "10"], "--vocab: input should be greater"),
        (["tokenizer", "DATA", "--out", "t", "--kind", "wordpiece"], "--kind: input should be"),
        (["tokenizer", "DATA", "--out", "t", "--val-fraction", "1"], "--val-fraction: input"),
        (["prepare", "DATA", "--tokenizer", "TOK", "--out", "d", "--dtype", "int8"], "--dtype"),
        (["sft", "--init", "RUN", "--data", "DATA", "--out", "s", "--steps", "0"], "--steps"),
    ],
)
def test_out_of_range_options_of_other_commands_are_one_line_errors(
    tmp_path, pretrained_run, tok_dir, args, fragment
):
    swap = {"RUN": str(pretrained_run), "DATA": str(CORPUS / "hindi.jsonl"), "TOK": str(tok_dir)}
    result = run_cli("trainer", *(swap.get(a, a) for a in args), cwd=tmp_path)
    assert_one_line_error(result, fragment)


def test_output_folders_that_cannot_be_written_are_one_line_errors(tmp_path, tok_dir, hindi_data):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    data = str(CORPUS / "hindi.jsonl")
    for args in (
        ["tokenizer", data, "--vocab", "1000", "--out", str(blocker / "tok")],
        ["prepare", data, "--tokenizer", str(tok_dir), "--out", str(blocker / "data")],
        ["train", "--data", str(hindi_data), "--steps", "2", "--out", str(blocker / "run")],
    ):
        result = run_cli("trainer", *args)
        assert_one_line_error(result, f"--out {blocker}/", "cannot be written")


def test_train_on_an_unprepared_file_suggests_prepare_with_a_data_folder(tmp_path):
    data = str(CORPUS / "hindi.jsonl")
    result = run_cli("trainer", "train", "--data", data, "--out", "r", cwd=tmp_path)
    assert_one_line_error(result, f"trainer prepare {data} --tokenizer TOK --out data/")
    assert f"--out {data}" not in result.stderr


def test_version_and_a_fast_help():
    result = run_cli("trainer", "--version")
    assert result.returncode == 0 and result.stdout.startswith("kahani ")
    probe = subprocess.run(
        [
            str(BIN / "python"),
            "-c",
            "import sys, trainer.cli; print(sorted(m for m in ('torch', 'transformers', "
            "'tokenizers') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
    )
    assert probe.stdout.strip() == "[]", probe.stderr  # heavy imports wait for their command


def test_ctrl_c_checkpoints_and_exits_130(tmp_path, hindi_data):
    run = tmp_path / "run"
    train = subprocess.Popen(
        [
            *(str(BIN / "trainer"), "train", "--data", str(hindi_data), "--preset", "tiny"),
            *("--block-size", "64", "--steps", "100000", "--checkpoint-every", "100000"),
            *("--out", str(run)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (run / "metrics.jsonl").is_file() or not (run / "metrics.jsonl").read_text():
        assert train.poll() is None and time.monotonic() < deadline, train.stderr
        time.sleep(0.05)
    train.send_signal(signal.SIGINT)
    _, err = train.communicate(timeout=120)
    assert train.returncode == 130, err
    assert "continue with --resume" in err and "Traceback" not in err
    (saved,) = (run / "checkpoints").glob("step_*")  # checkpointed where it stopped
    assert int(saved.name.removeprefix("step_")) >= 1
    assert not (run / "hf").exists()


def test_continued_pretraining_keeps_frozen_parts_bit_identical(
    tmp_path, pretrained_run, hindi_data
):
    out = tmp_path / "continued"
    result = run_cli(
        *("trainer", "train", "--init", str(pretrained_run), "--data", str(hindi_data)),
        *("--steps", "5", "--lr", "1e-3", "--freeze", "embeddings,blocks:0-1"),
        *("--eval-every", "5", "--out", str(out)),
    )
    assert result.returncode == 0, result.stderr
    before, _ = load_hf(pretrained_run)
    after, _ = load_hf(out)
    trainable = sum(p.numel() for p in after.blocks[2].parameters()) + after.norm.weight.numel()
    assert f"trainable parameters: {trainable:,} of {after.num_params():,}" in result.stdout
    frozen = ["embed.weight", *(f"blocks.{i}." for i in (0, 1))]
    for name, tensor in before.state_dict().items():
        if name.startswith(tuple(frozen)) or name == "lm_head.weight":  # tied to the embeddings
            assert torch.equal(tensor, after.state_dict()[name]), name
    assert not torch.equal(before.blocks[2].attn.qkv.weight, after.blocks[2].attn.qkv.weight)
    spec = json.loads((out / "run.json").read_text())
    assert spec["init"] == str(pretrained_run) and spec["preset"] == "from-init"
    # the run starts where the other ended: its first loss is far below a fresh model's
    first = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])["loss"]
    fresh = json.loads((pretrained_run / "metrics.jsonl").read_text().splitlines()[0])["loss"]
    assert first < fresh - 1.0


def test_init_from_a_run_with_another_tokenizer_is_a_one_line_error(
    tmp_path, pretrained_run, hindi_data
):
    for args in (
        ["tokenizer", str(CORPUS / "marathi.jsonl"), "--vocab", "1200", "--out", "tok"],
        ["prepare", str(CORPUS / "marathi.jsonl"), "--tokenizer", "tok", "--out", "mr"],
    ):
        assert run_cli("trainer", *args, cwd=tmp_path).returncode == 0
    result = run_cli(
        "trainer",
        "train",
        "--init",
        str(pretrained_run),
        "--data",
        "mr",
        "--out",
        "x",
        cwd=tmp_path,
    )
    assert_one_line_error(result, "was trained with another tokenizer", "--tokenizer")
    result = run_cli(
        *("trainer", "train", "--init", str(pretrained_run), "--data", str(hindi_data)),
        *("--preset", "5M", "--out", "y"),
        cwd=tmp_path,
    )
    assert_one_line_error(result, "sets the model's shape; drop --preset")
