"""`factory clean --executor local|slurm|ray`: cleaning past one process, on datatrove.

The in-process `factory clean` holds the deduplication index of every kept document in one
process (~2.6 KB each, `factory/dedup.py`). This package runs the same validators,
decontamination and deduplication as datatrove pipelines whose tasks each hold a share of the
input, so memory per process is bounded by the task's size, and the executors (local
processes, Slurm job arrays, a Ray cluster) are datatrove's own. The kept set equals the
in-process path's: see `pipeline.py` for the four stages and `clusters.py` for how the
in-process greedy rule is reproduced exactly.

Nothing here imports datatrove at module level except the stage modules, so `factory --help`
stays fast and the flag fails with an install hint when the extra is missing.
"""

import os

from factory.errors import KahaniError

INSTALL_HINT = 'pip install -e ".[scale]"'


def require_datatrove() -> None:
    """datatrove is an optional extra: without it, --executor is one line saying how to get it."""
    try:
        import datatrove  # noqa: F401
    except ImportError:
        raise KahaniError(f"--executor needs datatrove: {INSTALL_HINT}") from None


# The in-process index keeps about this much per kept document (factory/dedup.py, measured by
# bench/dedup.py), on top of the process itself.
DEDUP_BYTES_PER_DOC = 2700
ADVISE_AT_DOCS = 1_000_000


def scale_advice(answers: int, available: int | None = None) -> str | None:
    """A note for `factory clean` when a run is large enough that the distributed path is
    advisable: a million answers, or an index that would take half the available memory."""
    if available is None:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    need = answers * DEDUP_BYTES_PER_DOC
    if answers < ADVISE_AT_DOCS and need < available / 2:
        return None
    return (
        f"note: {answers:,} answers need about {need / 2**30:.1f} GiB in this one process to "
        f"deduplicate ({available / 2**30:.1f} GiB available); `--executor local --tasks 4` "
        f"bounds memory per task, and slurm or ray spread it over machines ({INSTALL_HINT})"
    )


def peak_rss_bytes() -> int:
    """This process's peak resident memory (VmHWM). Unlike getrusage's ru_maxrss, which Linux
    carries across exec, it starts again in a new program."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
