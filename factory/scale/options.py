"""The --executor flags of `factory clean`, declared once: names, defaults, bounds and help.

Light on purpose (pydantic only): `factory/cli.py` makes its options from these fields when it
starts, while the pipeline, and datatrove with it, is imported only when --executor is given.
"""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ScaleOptions(BaseModel):
    """How the distributed clean runs: the executor, how many tasks, and where."""

    model_config = ConfigDict(extra="forbid")

    executor: Literal["local", "slurm", "ray"] = Field(
        description="Clean on datatrove: local, slurm or ray (needs the scale extra)."
    )
    tasks: int = Field(
        1, gt=0, le=100_000, description="--executor: tasks the input is split into."
    )
    workers: int | None = Field(
        None, gt=0, description="--executor: tasks at once (default: all of them)."
    )
    mem_gb: float = Field(2.0, gt=0, description="slurm, ray: memory per task (GB).")
    slurm_partition: str | None = Field(None, description="slurm: partition (required).")
    slurm_time: str = Field("24:00:00", description="slurm: time limit per task.")
    ray_address: str | None = Field(
        None, description="ray: cluster address (default: start one on this machine)."
    )
    work: Path | None = Field(
        None, description="--executor: work folder (default: RUN/scale-work)."
    )
