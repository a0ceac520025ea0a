"""A stand-in for Slurm's `sbatch`, `srun` and `scontrol`, for tests on a machine without Slurm.

`sbatch [--export=ALL,K=V] [--dependency=...] SCRIPT` runs the batch script at once, once per
index of its `#SBATCH --array=0-N` directive (with SLURM_ARRAY_TASK_ID, SLURM_JOB_ID and
SLURM_NODELIST set), appends the output to `$SLURM_STANDIN_LOG`, and prints
`Submitted batch job <id>` as sbatch does. Jobs run in submission order, so a dependency on an
earlier job is always met. `srun [options] CMD...` runs CMD; `scontrol show hostnames X`
prints X.

    python tests/slurm_standin.py sbatch|srun|scontrol ARGS...
"""

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path


def sbatch(args: list[str]) -> None:
    script = Path(args[-1]).read_text()
    env = dict(os.environ)
    for arg in args[:-1]:
        if arg.startswith("--export=ALL,"):
            env.update(kv.split("=", 1) for kv in arg.removeprefix("--export=ALL,").split(","))
    array = re.search(r"^#SBATCH --array=(\d+)-(\d+)", script, re.MULTILINE)
    indices = range(int(array[1]), int(array[2]) + 1) if array else [None]
    counter = Path(env.get("SLURM_STANDIN_LOG", "slurm.log") + ".jobs")
    job_id = len(counter.read_text()) if counter.exists() else 0
    counter.write_text("x" * (job_id + 1))
    with open(env.get("SLURM_STANDIN_LOG", "slurm.log"), "a") as log:
        for index in indices:
            task_env = env | {"SLURM_JOB_ID": str(job_id), "SLURM_NODELIST": "localhost"}
            if index is not None:
                task_env["SLURM_ARRAY_TASK_ID"] = str(index)
            log.write(f"--- job {job_id} task {index}\n")
            log.flush()
            subprocess.run(["bash", "-c", script], env=task_env, stdout=log, stderr=log)
    print(f"Submitted batch job {job_id}")


def srun(args: list[str]) -> None:
    rest = iter(args)
    for arg in rest:
        if arg == "-n":
            next(rest)
        elif not arg.startswith("-"):
            command = [arg, *itertools.chain(rest)]
            os.execvp(command[0], command)


def scontrol(args: list[str]) -> None:
    if args[:2] == ["show", "hostnames"]:
        print(args[2])


if __name__ == "__main__":
    {"sbatch": sbatch, "srun": srun, "scontrol": scontrol}[sys.argv[1]](sys.argv[2:])
