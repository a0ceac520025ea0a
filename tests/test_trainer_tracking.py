"""`--track trackio` sends every metrics row to trackio too (its real local store, under a
temporary TRACKIO_DIR); without the flag, nothing but metrics.jsonl is written."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import assert_one_line_error, run_cli

pytest_plugins = ["tests.trainer_helpers"]  # fixtures: tok_dir, hindi_data, pretrained_run


def test_trackio_receives_the_rows_of_metrics_jsonl(tmp_path, hindi_data):
    pytest.importorskip("trackio", reason="pip install trackio (in kahani[dev])")
    env = {**os.environ, "TRACKIO_DIR": str(tmp_path / "trackio"), "HF_HUB_OFFLINE": "1"}
    result = run_cli(
        *("trainer", "train", "--data", str(hindi_data), "--preset", "tiny", "--block-size"),
        *("64", "--steps", "6", "--eval-every", "3", "--track", "trackio"),
        *("--track-project", "kahani-test", "--out", str(tmp_path / "run")),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    read = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json; from trackio import SQLiteStorage; "
            "print(json.dumps(SQLiteStorage.get_logs('kahani-test', 'run')))",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    logged = json.loads(read.stdout.strip().splitlines()[-1])
    rows = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    losses = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    assert [(r["step"], r["loss"]) for r in logged if "loss" in r] == losses
    bpb = [(r["step"], r["val_bpb"]) for r in rows if "val_bpb" in r]
    assert (
        [(r["step"], r["val_bpb"]) for r in logged if "val_bpb" in r]
        == bpb
        == [
            (3, bpb[0][1]),
            (6, bpb[1][1]),
        ]
    )


def test_without_the_flag_no_tracker_is_touched(tmp_path, hindi_data):
    env = {**os.environ, "TRACKIO_DIR": str(tmp_path / "trackio")}
    result = run_cli(
        *("trainer", "train", "--data", str(hindi_data), "--preset", "tiny", "--block-size"),
        *("64", "--steps", "2", "--out", str(tmp_path / "run")),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "trackio").exists()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "checkpoints",
        "hf",
        "metrics.jsonl",
        "run.json",
        "samples.jsonl",
        "tokenizer",
    ]


def test_a_tracker_that_is_not_installed_is_a_one_line_error(tmp_path, hindi_data):
    missing = "wandb"
    if importlib.util.find_spec(missing) is not None:
        pytest.skip("wandb is installed here")
    result = run_cli(
        "trainer",
        "train",
        "--data",
        str(hindi_data),
        "--track",
        missing,
        "--out",
        "r",
        cwd=tmp_path,
    )
    assert_one_line_error(result, "--track wandb needs the wandb package: pip install wandb")
