"""`factory clean --executor ...`: plan the work folder, then run the four stages on datatrove.

    signatures (N tasks) -> buckets (N tasks) -> clusters (1 task) -> write (1 task)

Each stage is a datatrove executor (local processes, a Slurm job array, or Ray tasks) over the
steps in `stages.py`; a stage starts when every task of the one before has its completion
marker. Local and Ray runs wait for the end, print the peak memory of each stage's processes
and remove the work folder; a Slurm run submits the four jobs, chained by dependencies, and
returns. Running the same command again resumes: completed tasks are skipped, as long as the
input and settings are those recorded in the work folder's settings.json (otherwise the folder
is cleared and the clean starts over).
"""

import dataclasses
import glob
import importlib.util
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from factory.clean import Cleaner, limits_of, settings_for
from factory.decontaminate import check_eval_files
from factory.errors import KahaniError
from factory.importer import answer_of, read_rows
from factory.languages import Language, get_language
from factory.scale import formats, require_datatrove, runstore
from factory.scale.options import ScaleOptions
from factory.settings import CleanSettings, load_config

if TYPE_CHECKING:
    from factory.scale.stages import Job

STAGES = ("signatures", "buckets", "clusters", "write")


@dataclass
class ScaleResult:
    run_dir: Path
    finished: bool  # False: the stages were submitted to Slurm and run later
    peak_rss: dict[str, int]  # stage -> largest peak RSS of its processes, in bytes
    work: Path
    skipped: int = 0  # input rows repeating an earlier row (same id and content), kept once

    def summary(self) -> str:
        run, work = _shown(self.run_dir), _shown(self.work)
        if not self.finished:
            return (
                f"submitted the four stages to Slurm; logs in {work}/logs; when the last job "
                f"ends: factory stats {run} (then delete {work})"
            )
        peaks = ", ".join(f"{s} {b / 2**20:,.0f}" for s, b in self.peak_rss.items())
        lines = [f"cleaned  {run}; peak MiB per process: {peaks}"]
        if self.skipped:
            lines.append(
                f"note: {self.skipped:,} rows repeat an earlier row (same id and content) "
                "and are kept once, as `factory clean FILE` keeps them"
            )
        return "\n".join(lines)


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the current folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def clean_at_scale(
    source: str,
    lang: str | None,
    out: Path | None,
    column: str | None,
    flags: dict[str, Any],
    options: ScaleOptions,
) -> ScaleResult:
    """Validate and deduplicate a run folder or files on datatrove; the same verdicts as the
    in-process `factory clean`, written into the same run store. `flags`: the clean settings
    given (`CleanSettings` fields); the rest are the run's own, or the defaults for files."""
    require_datatrove()
    if options.executor == "slurm":
        if not options.slurm_partition:
            raise KahaniError("--executor slurm needs --slurm-partition")
        if not shutil.which("sbatch"):
            raise KahaniError("--executor slurm: no sbatch on PATH; run this on a Slurm login node")
    if options.executor == "ray" and importlib.util.find_spec("ray") is None:
        raise KahaniError("--executor ray needs ray: pip install ray")
    job = plan(source, lang, out, column, flags, options.tasks, options.work)
    stages = _stages(job)
    if options.executor == "slurm":
        with _console_to(job.work / "logs" / "slurm.log"):
            _submit_to_slurm(stages, job, options)
        return ScaleResult(job.run_dir, False, {}, job.work)
    started_ray = False
    try:
        if options.executor == "ray":
            with _console_to(job.work / "logs" / "ray.log"):
                started_ray = _start_ray(options)
        for name, pipeline, tasks in stages:
            executor = _executor(options, job, name, pipeline, tasks)
            done = tasks - len(executor.get_incomplete_ranks())
            start = time.perf_counter()
            with _console_to(job.work / "logs" / f"{name}.log"):
                executor.run()
            _check_complete(executor, job, name)
            print(
                f"{name:<10} {tasks:,} task{'s' if tasks > 1 else ''}"
                + (f" ({done:,} done before)" if done else "")
                + f": {time.perf_counter() - start:,.1f} s"
            )
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    peak = {
        stage: max(map(int, notes.values()), default=0)
        for stage in STAGES
        if (notes := formats.read_task_notes(job.work / "memory" / stage))
    }
    skipped = int(formats.read_task_notes(job.work / "notes").get("skipped", 0))
    shutil.rmtree(job.work)
    return ScaleResult(job.run_dir, True, peak, job.work, skipped)


def plan(
    source: str,
    lang: str | None,
    out: Path | None,
    column: str | None,
    flags: dict[str, Any],
    tasks: int,
    work: Path | None,
) -> "Job":
    """Resolve the input, build the Job every task receives, and prepare the work folder."""
    from factory.scale.stages import Job

    path = Path(source)
    if (path / "config.json").is_file():
        run_dir = path.resolve()
        config = load_config(run_dir)
        settings = settings_for(config, flags)
        cleaner = Cleaner.for_run(config, settings)
        fingerprint: dict = {"run": dataclasses.asdict(runstore.answer_counts(run_dir))}
        ranges = tuple(runstore.answer_ranges(run_dir, tasks))
        files: tuple[str, ...] = ()
        language = config.lang
    else:
        if lang is None:
            raise KahaniError(f"{source} is not a run folder; give --lang to clean it as data")
        files = _input_files(source)
        language_ = get_language(lang)
        language = language_.name
        _check_first_row(files, language_, column, source)
        if out is None and glob.has_magic(source):
            raise KahaniError(f"{source}: give --out, the run folder to create for these files")
        run_dir = (out or Path("runs") / f"{path.stem}-clean").resolve()
        settings = CleanSettings.model_validate(flags)
        cleaner = Cleaner.for_import(language_, limits_of(settings))
        fingerprint = {"files": [_file_stamp(f) for f in files]}
        ranges = ()
    # Tasks may run elsewhere (Slurm, Ray): evaluation prompt files by absolute path.
    evals = [p.resolve() for p in settings.decontaminate]
    check_eval_files(evals, language)
    settings = settings.model_copy(update={"decontaminate": evals})
    work = (work or run_dir / "scale-work").resolve()
    recorded = {
        **fingerprint,
        "evals": [_file_stamp(str(p)) for p in evals],
        "language": language,
        "column": column,
        "clean": settings.model_dump(mode="json"),
        "tasks": tasks,
    }
    resuming = _prepare_work(work, recorded)
    if files and (run_dir / "store.sqlite").exists() and not resuming:
        raise KahaniError(f"{run_dir} already holds a run; choose another --out")
    if not resuming:
        work.mkdir(parents=True)
        (work / "settings.json").write_text(json.dumps(recorded, indent=1), encoding="utf-8")
    return Job(
        work=work,
        run_dir=run_dir,
        language=language,
        settings=settings,
        tasks=tasks,
        files=files,
        column=column,
        ranges=ranges,
        pattern=source,
        cleaner=cleaner,
    )


def _input_files(source: str) -> tuple[str, ...]:
    """A file, a dataset folder, or a glob of them, in sorted order (the prompt order)."""
    if glob.has_magic(source):
        found = sorted(glob.glob(source, recursive=True))
        if not found:
            raise KahaniError(f"{source} matches no file")
        return tuple(str(Path(f).resolve()) for f in found)
    if not Path(source).exists():
        raise KahaniError(f"{source} does not exist")
    return (str(Path(source).resolve()),)


def _check_first_row(files: tuple[str, ...], language: Language, column: str | None, source: str):
    """Fail at once, naming the columns, if the first readable row has no text to clean (as
    `import_file` does), rather than in every task."""
    for name in files:
        for _, row, _ in read_rows(Path(name)):
            if row is not None:
                answer_of(row, language, column)
                return
    raise KahaniError(f"{source} holds no readable rows")


def _file_stamp(name: str) -> list:
    stat = Path(name).stat()
    return [name, stat.st_size, stat.st_mtime_ns]


def _prepare_work(work: Path, settings: dict) -> bool:
    """True when the work folder holds a run of these very settings (resume it); a folder from
    other settings is cleared, and anything that is not a work folder is never touched."""
    marker = work / "settings.json"
    if not work.exists():
        return False
    if not marker.is_file():
        if any(work.iterdir()):
            raise KahaniError(f"--work {work} is not empty and not a kahani work folder")
        work.rmdir()
        return False
    if json.loads(marker.read_text(encoding="utf-8")) == settings:
        print(f"resuming the distributed clean in {work}")
        return True
    print(f"the input or settings changed since {work} was made: starting over")
    shutil.rmtree(work)
    return False


def _stages(job) -> list[tuple[str, list, int]]:
    from datatrove.pipeline.writers import ParquetWriter

    from factory.scale import stages

    records = ParquetWriter(
        str(job.work / "records"),
        output_filename="${rank}.parquet",
        adapter=stages.record_of,
        schema=formats.RECORD_SCHEMA,
        max_file_size=-1,
    )
    read = [stages.ReadInput(job), stages.Validate(job), records, stages.Signatures(job)]
    return [
        ("signatures", read, job.tasks),
        ("buckets", [stages.Buckets(job)], job.tasks),
        ("clusters", [stages.Clusters(job)], 1),
        ("write", [stages.WriteRun(job)], 1),
    ]


def _executor(options: ScaleOptions, job, name: str, pipeline: list, tasks: int, depends=None):
    logs = str(job.work / "logs" / name)
    workers = min(options.workers or options.tasks, tasks)
    if options.executor == "local":
        from datatrove.executor import LocalPipelineExecutor

        # fork: workers start with kahani and datatrove already imported (forkserver, the
        # default, imports them again in every worker of every stage).
        return LocalPipelineExecutor(
            pipeline, tasks=tasks, workers=workers, logging_dir=logs, start_method="fork"
        )
    if options.executor == "ray":
        from datatrove.executor.ray import RayPipelineExecutor

        return RayPipelineExecutor(
            pipeline,
            tasks=tasks,
            workers=workers,
            logging_dir=logs,
            cpus_per_task=1,
            mem_per_cpu_gb=options.mem_gb,
        )
    from datatrove.executor.slurm import SlurmPipelineExecutor

    venv = Path(sys.prefix) / "bin" / "activate"
    return SlurmPipelineExecutor(
        pipeline,
        tasks=tasks,
        time=options.slurm_time,
        partition=options.slurm_partition,
        job_name=f"kahani-{name}",
        logging_dir=logs,
        depends=depends,
        workers=options.workers or -1,
        mem_per_cpu_gb=options.mem_gb,
        venv_path=str(venv) if sys.prefix != sys.base_prefix else None,
        mail_type="NONE",
    )


def _submit_to_slurm(stages: list, job, options: ScaleOptions) -> None:
    last = None
    for name, pipeline, tasks in stages:
        last = _executor(options, job, name, pipeline, tasks, depends=last)
    last.run()  # launches its dependencies first, each with afterok on the one before


def _start_ray(options: ScaleOptions) -> bool:
    """Connect to --ray-address, or start a Ray instance on this machine for this run only,
    listening on 127.0.0.1 (Ray binds the node's address otherwise). True if we started it."""
    if options.ray_address is None:
        # Read by ray at import: a single-machine instance on the loopback address.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    if ray.is_initialized():
        return False
    ray.init(
        address=options.ray_address,
        include_dashboard=False,
        log_to_driver=False,
        **({"num_cpus": options.workers or options.tasks} if options.ray_address is None else {}),
    )
    return True


@contextmanager
def _console_to(path: Path) -> Iterator[None]:
    """datatrove logs every task to the console (and to its own files under logs/): send that
    console output to a file, so the command prints a line per stage and a user error stays
    one `error:` line."""
    from datatrove.utils.logging import setup_default_logger

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as log, redirect_stderr(log):
        setup_default_logger()  # loguru's default sink, now writing to the file
        try:
            yield
        finally:
            log.flush()
    setup_default_logger()


def _check_complete(executor, job, name: str) -> None:
    """Ray reports failed tasks only in its logs: a stage with unfinished tasks stops the run
    with the first task's own error, or says where the logs are."""
    missing = executor.get_incomplete_ranks(skip_completed=True)
    if not missing:
        return
    notes = formats.read_task_notes(job.work / "errors")
    for key, message in notes.items():
        if key.startswith(name):
            raise KahaniError(message)
    raise KahaniError(
        f"{len(missing)} of {executor.world_size} {name} tasks did not finish; their logs are "
        f"in {job.work / 'logs' / name / 'logs'}; run the same command again to finish them"
    )
