"""Start-up time of `trainer --help` (and of a one-line option error) against the named
baseline `python -c "import torch"`, side by side, alternating, median of several rounds.

Goal: under 0.5 s, so a user's typo or `--help` never waits for torch and transformers to
load; the ratio shows what the command would cost if it imported them at the top.

    python bench/cli_startup.py --rounds 7
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
COMMANDS = {
    "trainer --help": [str(BIN / "trainer"), "--help"],
    "trainer train --steps 0 (an error)": [
        *(str(BIN / "trainer"), "train", "--data", "x", "--out", "y", "--steps", "0")
    ],
    "baseline: python -c 'import torch'": [sys.executable, "-c", "import torch"],
}


def seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, env={**os.environ}, check=False)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):
        for name, command in COMMANDS.items():  # alternating: both see the same machine load
            times[name].append(seconds(command))
    baseline = statistics.median(times["baseline: python -c 'import torch'"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<40} {median:6.3f} s   {median / baseline:5.2f}x the baseline")


if __name__ == "__main__":
    main()
