"""A sweep is a list of ordinary resumable runs: killed mid-trial and restarted, it skips the
finished trials, resumes the interrupted one, and ranks every trial by validation bits/byte."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import BIN, assert_one_line_error, run_cli
from trainer.sweep import read_sweep, trials

pytest_plugins = ["tests.trainer_helpers"]  # fixtures: tok_dir, hindi_data, pretrained_run

FIXED = "{preset: tiny, block_size: 64, steps: 30, eval_every: 15, checkpoint_every: 3}"


def sweep_file(folder: Path, data: Path, search: str = "lr: [0.001, 0.003, 0.01]") -> Path:
    path = folder / "sweep.yaml"
    path.write_text(f"data: {data}\nout: {folder / 'sweep'}\nfixed: {FIXED}\nsearch:\n  {search}\n")
    return path


def steps(run: Path) -> list[int]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["step"] for r in rows if "loss" in r]


def test_a_killed_sweep_skips_finished_trials_and_resumes_the_interrupted_one(tmp_path, hindi_data):
    config = sweep_file(tmp_path, hindi_data)
    out = tmp_path / "sweep"
    sweep = subprocess.Popen(
        [str(BIN / "trainer"), "sweep", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while not any((out / "trial-001" / "checkpoints").glob("step_*")):
        assert sweep.poll() is None and time.monotonic() < deadline, "the sweep ended early"
        time.sleep(0.02)
    sweep.send_signal(signal.SIGKILL)  # no chance to checkpoint: a crash, not a Ctrl-C
    sweep.wait()
    assert (out / "trial-000" / "hf").is_dir() and not (out / "trial-001" / "hf").exists()
    finished = (out / "trial-000" / "metrics.jsonl").stat().st_mtime_ns

    again = run_cli("trainer", "sweep", str(config))
    assert again.returncode == 0, again.stderr
    assert "trial-000: done, skipped (lr=0.001)" in again.stdout
    assert "trial-001: resuming (lr=0.003)" in again.stdout
    assert "trial-002: starting (lr=0.01)" in again.stdout
    assert (out / "trial-000" / "metrics.jsonl").stat().st_mtime_ns == finished
    for trial in ("trial-000", "trial-001", "trial-002"):
        assert steps(out / trial) == list(range(1, 31)), trial  # no step twice, none missing

    table = json.loads((out / "results.json").read_text())
    bpb = [row["val_bpb"] for row in table]
    assert bpb == sorted(bpb) and all(row["status"] == "done" for row in table)
    assert f"best: {table[0]['trial']} (lr={table[0]['lr']:.4g}): val bits/byte" in again.stdout

    third = run_cli("trainer", "sweep", str(config))  # all done: nothing runs again
    assert third.stdout.count("done, skipped") == 3


def test_workers_split_the_trials_without_changing_the_file(tmp_path, hindi_data):
    config = sweep_file(tmp_path, hindi_data, "lr: [0.001, 0.003, 0.01]")
    quick = config.read_text().replace("steps: 30", "steps: 2").replace("every: 15", "every: 2")
    config.write_text(quick)
    first = run_cli("trainer", "sweep", str(config), "--worker", "1/2")
    assert first.returncode == 0, first.stderr
    out = tmp_path / "sweep"
    assert sorted(p.name for p in out.glob("trial-*")) == ["trial-001"]
    second = run_cli("trainer", "sweep", str(config), "--worker", "0/2")
    assert second.returncode == 0, second.stderr
    assert sorted(p.name for p in out.glob("trial-*")) == ["trial-000", "trial-001", "trial-002"]
    assert "trial-001:" not in second.stdout  # worker 0 left worker 1's trial alone


def test_torchrun_processes_each_take_their_share_of_the_trials(tmp_path, hindi_data):
    config = sweep_file(tmp_path, hindi_data, "lr: [0.001, 0.003]")
    quick = config.read_text().replace("steps: 30", "steps: 2").replace("every: 15", "every: 2")
    config.write_text(quick)
    done = subprocess.run(
        [
            *(sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"),
            *("-m", "trainer", "sweep", str(config)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = tmp_path / "sweep"
    for trial in ("trial-000", "trial-001"):
        assert steps(out / trial) == [1, 2]  # each trial run once, by one process, alone
    assert done.stdout.count("starting") == 2 and "2 process(es)" not in done.stdout


def test_grid_and_random_trials_are_a_function_of_the_file(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('data = "d"\n[search]\nlr = [0.001, 0.01]\ndepth = [2, 3]\n')
    assert trials(read_sweep(grid)) == [
        {"lr": 0.001, "depth": 2},
        {"lr": 0.001, "depth": 3},
        {"lr": 0.01, "depth": 2},
        {"lr": 0.01, "depth": 3},
    ]
    rand = tmp_path / "random.yaml"
    rand.write_text(
        "data: d\nmethod: random\ntrials: 5\nseed: 3\n"
        "search:\n  lr: {min: 0.0001, max: 0.01, log: true}\n  batch_size: [8, 16]\n"
    )
    drawn = trials(read_sweep(rand))
    assert drawn == trials(read_sweep(rand)) and len(drawn) == 5
    assert all(1e-4 <= t["lr"] <= 1e-2 and t["batch_size"] in (8, 16) for t in drawn)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("data: d\ngrdi: {lr: [1]}\nsearch: {lr: [0.1]}\n", "unknown key 'grdi'"),
        ("data: d\nsearch: {learning_rate: [0.1]}\n", "learning_rate is not a setting"),
        ("data: d\nsearch: {steps: [10, 0]}\n", "steps: input should be greater than 0"),
        ("data: d\nmethod: random\nsearch: {lr: [0.1]}\n", "needs 'trials'"),
        ("data: d\nsearch: {width: [100], heads: [3]}\nfixed: {}\n", "heads of an even size"),
    ],
)
def test_a_bad_sweep_file_is_a_one_line_error(tmp_path, hindi_data, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace("data: d", f"data: {hindi_data}"))
    result = run_cli("trainer", "sweep", str(path), "--out", str(tmp_path / "o"))
    assert_one_line_error(result, fragment)
