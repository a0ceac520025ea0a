"""The distributed clean's pipeline steps, run by datatrove's executors (see `pipeline.py`).

1. signatures (N tasks): read a share of the input in prompt order, validate and
   decontaminate each answer (`Validate`: kahani's checks), write every row with its verdict
   (datatrove's ParquetWriter), and for each valid document its exact key, LSH band keys and
   shingles (`Signatures`).
2. buckets (N tasks): each task takes a 1/N slice of the key range and, one kind of key at a
   time (each band, the exact key, for files the row id), turns runs of equal keys into events:
   verified pairs, exact copies, repeated rows (`Buckets`).
3. clusters (1 task): the in-process greedy rule over the events, in prompt order (`Clusters`).
4. write (1 task): verdicts into the run store, and for files the rows themselves (`WriteRun`).

Every task overwrites its own outputs from the start, and datatrove marks it complete only when
it returns, so a task killed half-way is simply run again.
"""

import dataclasses
import hashlib
import heapq
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from factory.clean import Cleaner, check_answer, duplicate_row, verdict_row
from factory.decontaminate import Decontaminator, decontaminator_for
from factory.dedup import Deduplicator, MinHasher, jaccard
from factory.errors import KahaniError
from factory.importer import imported_row, read_rows
from factory.languages import get_language
from factory.scale import formats, peak_rss_bytes, runstore
from factory.scale.clusters import RepeatedId, greedy_duplicates
from factory.settings import CleanSettings
from factory.validate import Verdict


@dataclass(frozen=True)
class Job:
    """Everything a task needs, pickled into it: absolute paths, the input and the settings."""

    work: Path
    run_dir: Path
    language: str
    settings: CleanSettings  # the validators' thresholds and the near-duplicate threshold
    tasks: int  # tasks of the signatures stage, and of the buckets stage (key-range slices)
    files: tuple[str, ...] = ()  # input files, in prompt order; empty for a run folder
    column: str | None = None
    ranges: tuple[tuple[int, int], ...] = ()  # run folder: prompt-index range of each task
    pattern: str = ""  # files: what the user gave, for the run's config.json
    cleaner: Cleaner | None = field(default=None, compare=False)

    @property
    def threshold(self) -> float:
        return self.settings.dedup_threshold

    @property
    def imported(self) -> bool:
        return bool(self.files)

    @cached_property
    def decontaminator(self) -> Decontaminator | None:
        """The in-process clean's index of evaluation prompts, made once per task."""
        return decontaminator_for(self.settings, self.language)

    @cached_property
    def hasher(self) -> MinHasher:
        """The in-process deduplicator's MinHash: same permutations, bands, rows and shingles."""
        return Deduplicator(threshold=self.threshold).hasher

    def kinds(self) -> list[str]:
        """Key kinds of the buckets stage, in task order."""
        bands = [f"band_{b:03d}" for b in range(self.hasher.bands)]
        return [*bands, "exact", *(["ids"] if self.imported else [])]

    def key_files(self, kind: str) -> list[Path]:
        return [self.work / "keys" / kind / f"{rank:05d}.bin" for rank in range(self.tasks)]

    def where(self, order: int) -> str:
        """A row's place for people: `line 12 of stories.jsonl` or `prompt 12`."""
        if not self.imported:
            return f"prompt {order}"
        file_no, number = formats.file_row(order)
        return f"row {number} of {self.files[file_no]}"


@contextmanager
def reported(job: Job, stage: str, rank: int) -> Iterator[None]:
    """A task's KahaniError is written where the driver finds it (Ray does not re-raise), and
    its peak memory is recorded for the summary line."""
    try:
        yield
    except KahaniError as err:
        formats.write_task_note(job.work / "errors" / f"{stage}-{rank:05d}.txt", str(err))
        raise
    peak = str(peak_rss_bytes())
    formats.write_task_note(job.work / "memory" / stage / f"{rank:05d}.txt", peak)


# Stage 1: signatures ------------------------------------------------------------------------


class ReadInput(PipelineStep):
    """This task's share of the input as Documents, in prompt order.

    A run folder is cut into prompt-index ranges of equal answer counts. Files are read whole by
    `factory.importer.read_rows`, as `factory clean FILE` reads them; with fewer files than tasks
    each file is read by several tasks, each keeping every k-th row, so one big file still
    spreads over all tasks.
    """

    name = "kahani: read"
    type = "READER"

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1):
        if not self.job.imported:
            lo, hi = self.job.ranges[rank]
            for prompt_id, idx, variables, text, finish_reason in runstore.read_answers(
                self.job.run_dir, lo, hi
            ):
                meta = {"order": idx, "variables": variables, "finish_reason": finish_reason}
                yield Document(text=text, id=prompt_id, metadata=meta)
            return
        language = get_language(self.job.language)
        files = self.job.files
        stripes = -(-world_size // len(files))  # each file is read by this many tasks
        now = time.time()
        for unit in range(rank, len(files) * stripes, world_size):
            file_no, stripe = divmod(unit, stripes)
            for number, row, problem in read_rows(Path(files[file_no])):
                if number % stripes != stripe:
                    continue
                order = formats.order_of(file_no, number)
                if row is None:
                    line = f"line-{number}" if len(files) == 1 else f"{files[file_no]}:{number}"
                    meta = {"order": order, "failure": f"corrupt_line: {problem}"}
                    yield Document(text="", id=line, metadata=meta)
                    continue
                try:
                    prompt_id, variables, answer = imported_row(row, language, self.job.column, now)
                except KahaniError as err:
                    raise KahaniError(f"{self.job.where(order)}: {err}") from None
                meta = {"order": order, "variables": variables, "answer": answer}
                yield Document(text=answer.text, id=prompt_id, metadata=meta)


class Validate(PipelineStep):
    """kahani's validators, then decontamination, as a pipeline step: `check_answer`, the very
    function the in-process clean judges each answer with."""

    name = "kahani: validate"
    type = "FILTER"

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1):
        for doc in data:
            meta = doc.metadata
            if "failure" not in meta:
                answer = meta.get("answer")
                finish = answer.finish_reason if answer else meta["finish_reason"]
                meta["verdict"] = check_answer(
                    self.job.cleaner, self.job.decontaminator, doc.text, finish, meta["variables"]
                )
                self.stat_update("kept" if meta["verdict"].ok else meta["verdict"].reason)
            yield doc


def record_of(writer: PipelineStep, doc: Document) -> dict:
    """A Document as a row of `records/<rank>.parquet` (formats.RECORD_SCHEMA)."""
    meta = doc.metadata
    verdict: Verdict | None = meta.get("verdict")
    answer = meta.get("answer")
    return {
        "order": meta["order"],
        "prompt_id": doc.id,
        "reason": verdict.reason if verdict else "corrupt_line",
        "detail": verdict.detail if verdict else "",
        "text": verdict.text if verdict else "",
        "messages": _json(verdict.messages) if verdict and verdict.messages else None,
        "failure": meta.get("failure"),
        "answer": _json(dataclasses.asdict(answer)) if answer else None,
        "variables": _json(meta["variables"]) if answer else None,
    }


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


class Signatures(PipelineStep):
    """For each valid document: its exact key, band keys and shingles, computed by the in-process
    deduplicator's own `MinHasher.fingerprint` on the clean text (grapheme-safe words, NFC and
    casefolding, word 3-grams). Key files are sorted at the end, one at a time."""

    name = "kahani: signatures"
    type = "DEDUP"

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1):
        job = self.job
        with reported(job, "signatures", rank):
            hasher = job.hasher
            bands = formats.BandWriter(
                [job.key_files(kind)[rank] for kind in job.kinds() if kind.startswith("band_")]
            )
            exact = formats.RecordWriter(job.key_files("exact")[rank], formats.KEY)
            ids = (
                formats.RecordWriter(job.key_files("ids")[rank], formats.IDS)
                if job.imported
                else None
            )
            docs = formats.DocWriter(job.work / "docs" / f"{rank:05d}.bin", rank, hasher.bands)
            for doc in data:
                meta = doc.metadata
                if ids is not None and "failure" not in meta:
                    ids.add(
                        _hash64(doc.id), _row_hash(meta["answer"], meta["variables"]), meta["order"]
                    )
                verdict = meta.get("verdict")
                if verdict is not None and verdict.ok:
                    fp = hasher.fingerprint(verdict.text)
                    loc = docs.add(meta["order"], fp.exact, fp.bands, fp.shingles, doc.id)
                    exact.add(fp.exact, loc)
                    if fp.bands:
                        bands.add(fp.bands, loc)
                    self.stat_update("signatures")
                yield doc
            docs.close()
            exact.close()
            bands.close()
            if ids is not None:
                ids.close()


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def _row_hash(answer, variables: dict) -> int:
    """What the store would keep of a row: two rows with one id and this hash are one row."""
    kept = [answer.text, variables, answer.finish_reason, answer.model]
    return _hash64(json.dumps(kept, ensure_ascii=False, sort_keys=True))


# Stage 2: buckets ---------------------------------------------------------------------------


class Buckets(PipelineStep):
    """One slice of the key range, for every kind of key: runs of equal keys become events.

    A band's run is a bucket of candidates. Only the first document of each exact text takes
    part; each pair is verified by its exact Jaccard (the shingles are read back from
    `docs/`), and only in the lowest band the two share, so it is verified once. A bucket of k
    documents costs k(k-1)/2 verifications (the in-process index compares a document with kept
    ones only, so there this cost is linear in a cluster's size).
    """

    name = "kahani: buckets"
    type = "DEDUP"

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1):
        job = self.job
        with reported(job, "buckets", rank):
            lo, hi = rank * 2**64 // world_size, (rank + 1) * 2**64 // world_size
            reader = formats.DocReader(job.work / "docs", job.hasher.bands)
            for kind in job.kinds():  # one kind's slice in memory at a time
                dtype = formats.IDS if kind == "ids" else formats.KEY
                records = formats.read_key_range(job.key_files(kind), dtype, lo, hi)
                runs = formats.equal_key_runs(records["key"])
                if kind == "ids":
                    events = self._repeated_rows(records, runs)
                elif kind == "exact":
                    events = self._copies(records, runs, reader)
                else:
                    events = self._pairs(records, runs, reader, int(kind[5:]))
                writer = formats.EventWriter(job.work / "events", f"{kind}-{rank:05d}")
                for event in events:
                    writer.add(event)
                writer.close()
                self.stat_update("events", value=writer.count)
            reader.close()
        yield from ()

    def _pairs(self, records, runs, reader, band: int) -> Iterator[formats.Event]:
        threshold = self.job.threshold
        for start, end in runs:
            members = sorted(
                (reader.entry(int(loc)) for loc in records["loc"][start:end]),
                key=lambda e: e.order,
            )
            firsts, texts = [], set()
            for entry in members:  # later copies of a text are COPY events of the exact kind
                if entry.exact not in texts:
                    texts.add(entry.exact)
                    firsts.append(entry)
            shingles: dict[int, object] = {}
            for j, later in enumerate(firsts):
                for earlier in firsts[:j]:
                    if band and (earlier.bands[:band] == later.bands[:band]).any():
                        continue  # verified in a lower band
                    for e in (earlier, later):
                        if e.loc not in shingles:
                            shingles[e.loc] = reader.shingles(e)
                    similarity = jaccard(shingles[earlier.loc], shingles[later.loc])
                    self.stat_update("verified")
                    if similarity >= threshold:
                        yield (
                            later.order,
                            formats.PAIR,
                            earlier.order,
                            similarity,
                            0,
                            later.prompt_id,
                            earlier.prompt_id,
                        )

    @staticmethod
    def _copies(records, runs, reader) -> Iterator[formats.Event]:
        for start, end in runs:
            first, *copies = sorted(
                (reader.entry(int(loc)) for loc in records["loc"][start:end]),
                key=lambda e: e.order,
            )
            yield (first.order, formats.REP, 0, 1.0, len(copies), first.prompt_id, "")
            for copy in copies:
                yield (
                    copy.order,
                    formats.COPY,
                    first.order,
                    1.0,
                    0,
                    copy.prompt_id,
                    first.prompt_id,
                )

    @staticmethod
    def _repeated_rows(records, runs) -> Iterator[formats.Event]:
        for start, end in runs:
            group = sorted(records[start:end].tolist(), key=lambda r: r[2])  # (key, row, order)
            _, first_row, first_order = group[0]
            for _, row, order in group[1:]:
                kind = formats.SKIP if row == first_row else formats.CONFLICT
                yield (order, kind, first_order, 0.0, 0, "", "")


# Stage 3: clusters --------------------------------------------------------------------------


class Clusters(PipelineStep):
    """The greedy in-process rule over all events, merged in prompt order (`clusters.py`)."""

    name = "kahani: clusters"
    type = "DEDUP"

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1):
        job = self.job
        with reported(job, "clusters", rank):
            files = sorted((job.work / "events").glob("*.parquet"))
            events = heapq.merge(
                *(formats.read_events(f) for f in files), key=lambda e: (e[0], e[1], e[2])
            )
            writer = formats.DupWriter(job.work / "dups.parquet")
            skipped = 0
            try:
                for dup in greedy_duplicates(events):
                    writer.add(*dup)
                    self.stat_update(dup[1])
                    skipped += dup[1] == "skip"
            except RepeatedId as repeat:
                later, first = repeat.args
                raise KahaniError(
                    f"{job.where(later)} has the id of {job.where(first)} but other content; "
                    "give every row its own id (or none: rows without one get a content hash)"
                ) from None
            writer.close()
            formats.write_task_note(job.work / "notes" / "skipped.txt", str(skipped))
        yield from ()


# Stage 4: write -----------------------------------------------------------------------------


class WriteRun(PipelineStep):
    """Every row's verdict into the run store, in prompt order, with the duplicates applied;
    for files, first the rows themselves and the run's config.json, as the importer writes
    them."""

    name = "kahani: write"
    type = "WRITER"

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1):
        job = self.job
        with reported(job, "write", rank):
            if job.imported:
                from factory.importer import imported_config
                from factory.settings import save_config

                rows = sum(formats.count_records(p) for p in self._record_paths())
                config = imported_config(
                    Path(job.pattern), get_language(job.language), job.run_dir.name, rows
                )
                job.run_dir.mkdir(parents=True, exist_ok=True)
                save_config(job.run_dir, config)
            runstore.save_cleaned(job.run_dir, self._rows, job.imported)
        yield from ()

    def _record_paths(self) -> list[Path]:
        return [self.job.work / "records" / f"{r:05d}.parquet" for r in range(self.job.tasks)]

    def _records(self) -> Iterator[dict]:
        readers = (formats.read_records(p) for p in self._record_paths())
        return heapq.merge(*readers, key=lambda r: r["order"])

    def _rows(self) -> Iterator[runstore.CleanRow]:
        """Records joined with the duplicate verdicts, both in prompt order."""
        from factory.store import Answer

        dups = formats.read_dups(self.job.work / "dups.parquet")
        dup = next(dups, None)
        for record in self._records():
            order = record["order"]
            while dup is not None and dup[0] < order:
                dup = next(dups, None)
            verdict = Verdict(
                record["reason"],
                record["detail"],
                text=record["text"],
                messages=json.loads(record["messages"]) if record["messages"] else [],
            )
            row = verdict_row(record["prompt_id"], verdict)
            if dup is not None and dup[0] == order:
                _, reason, duplicate_of, similarity = dup
                if reason == "skip":
                    continue  # a repeated row: the importer keeps it once
                row = duplicate_row(record["prompt_id"], verdict, reason, duplicate_of, similarity)
            answer = Answer(**json.loads(record["answer"])) if record["answer"] else None
            yield runstore.CleanRow(
                index=order,
                verdict=row,
                variables=json.loads(record["variables"]) if record["variables"] else None,
                answer=answer,
                failure=record["failure"],
            )
