"""The distributed clean's intermediate files; this module alone reads and writes them.

All live in the work folder (`<run>/scale-work/` unless `--work` says otherwise):

    settings.json                   what the files below were made from (`pipeline.py`)
    records/<rank>.parquet          stage 1: every input row and its validation verdict,
                                    in prompt order (written by datatrove's ParquetWriter)
    docs/<rank>.bin                 stage 1: one entry per valid document, read by offset:
                                    order, exact key, band keys, prompt id, shingles
    keys/band_<b>/<rank>.bin        stage 1: (band key, loc) sorted by key, one file per band
    keys/exact/<rank>.bin           stage 1: (exact key, loc) sorted by key
    keys/ids/<rank>.bin             stage 1, files only: (id hash, row hash, order) by key
    events/<kind>-<rank>-<n>.parquet  stage 2: verified pairs, exact copies, repeated ids,
                                    each file sorted by the order of the document concerned
    dups.parquet                    stage 3: the duplicate verdicts, in prompt order
    errors/, memory/, notes/        one-line notes from tasks for the command to print
    logs/<stage>/                   datatrove's task logs, stats and completion markers

`order` is a document's place in prompt order: the prompt index for a run folder, and
`file number << 32 | row number` for files (the importer's row number, so one file gives the
same order as `factory clean FILE`). `loc` is `rank << 40 | byte offset` in `docs/<rank>.bin`.
"""

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

KEY = np.dtype([("key", "<u8"), ("loc", "<u8")])
IDS = np.dtype([("key", "<u8"), ("row", "<u8"), ("order", "<u8")])
LOC_BITS = 40
FILE_BITS = 32

RECORD_SCHEMA = pa.schema(
    [
        ("order", pa.uint64()),
        ("prompt_id", pa.string()),
        ("reason", pa.string()),  # null: passed validation
        ("detail", pa.string()),
        ("text", pa.string()),  # the clean text the checks return
        ("messages", pa.string()),  # JSON chat messages (conversations)
        ("failure", pa.string()),  # files: "corrupt_line: ..." for an unreadable line
        # Files only (a run folder's store holds them already): what the importer stores.
        ("answer", pa.string()),  # JSON of factory.store.Answer
        ("variables", pa.string()),  # JSON
    ]
)

# Stage 2 events, one kind per job of the buckets stage.
PAIR, REP, COPY, SKIP, CONFLICT = range(5)
EVENT_SCHEMA = pa.schema(
    [
        ("order", pa.uint64()),  # the document the event is about
        ("kind", pa.uint8()),
        ("other", pa.uint64()),  # PAIR: the earlier document; COPY: the first with its text
        ("similarity", pa.float64()),  # PAIR: exact Jaccard of the two shingle sets
        ("copies", pa.uint32()),  # REP: how many later documents repeat its exact text
        ("id", pa.string()),  # prompt id of `order`
        ("other_id", pa.string()),  # prompt id of `other`
    ]
)
Event = tuple[int, int, int, float, int, str, str]

DUP_SCHEMA = pa.schema(
    [
        ("order", pa.uint64()),
        ("reason", pa.string()),  # duplicate | near_duplicate | skip (a repeated input row)
        ("duplicate_of", pa.string()),
        ("similarity", pa.float64()),
    ]
)


def order_of(file_no: int, number: int) -> int:
    return file_no << FILE_BITS | number


def file_row(order: int) -> tuple[int, int]:
    return order >> FILE_BITS, order & ((1 << FILE_BITS) - 1)


# Stage 1: key files and document entries ---------------------------------------------------


class BandWriter:
    """Appends one (key, loc) record per band for each document, into one file per band."""

    def __init__(self, paths: list[Path], buffer: int = 16384) -> None:
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.files = [path.open("wb") for path in paths]
        self.paths = paths
        self.keys = np.empty((buffer, len(paths)), dtype=np.uint64)
        self.locs = np.empty(buffer, dtype=np.uint64)
        self.n = 0

    def add(self, keys: list[int], loc: int) -> None:
        self.keys[self.n] = keys
        self.locs[self.n] = loc
        self.n += 1
        if self.n == len(self.locs):
            self._flush()

    def _flush(self) -> None:
        records = np.empty(self.n, dtype=KEY)
        records["loc"] = self.locs[: self.n]
        for b, f in enumerate(self.files):
            records["key"] = self.keys[: self.n, b]
            f.write(records.tobytes())
        self.n = 0

    def close(self) -> None:
        self._flush()
        for f in self.files:
            f.close()
        for path in self.paths:
            sort_key_file(path, KEY)


class RecordWriter:
    """Appends fixed-size records of one dtype to one file; `close` sorts it by key."""

    def __init__(self, path: Path, dtype: np.dtype, buffer: int = 16384) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.dtype = path, dtype
        self.file = path.open("wb")
        self.buffer = np.empty(buffer, dtype=dtype)
        self.n = 0

    def add(self, *fields: int) -> None:
        self.buffer[self.n] = fields
        self.n += 1
        if self.n == len(self.buffer):
            self.file.write(self.buffer.tobytes())
            self.n = 0

    def close(self) -> None:
        self.file.write(self.buffer[: self.n].tobytes())
        self.file.close()
        sort_key_file(self.path, self.dtype)


def sort_key_file(path: Path, dtype: np.dtype) -> None:
    """Sort a task's file by key in memory: 16-24 bytes per document of one task."""
    records = np.fromfile(path, dtype=dtype)
    records[np.argsort(records["key"], kind="stable")].tofile(path)


def read_key_range(paths: list[Path], dtype: np.dtype, lo: int, hi: int) -> np.ndarray:
    """Records with lo <= key < hi from every task's sorted file, sorted by key.

    Each file is memory-mapped and cut by binary search, so a task of the buckets stage loads
    only its share of the keys (hi may be 2**64).
    """
    parts = []
    for path in paths:
        if not path.is_file() or path.stat().st_size == 0:
            continue
        mapped = np.memmap(path, dtype=dtype, mode="r")
        keys = mapped["key"]
        start = int(np.searchsorted(keys, np.uint64(lo)))
        end = len(keys) if hi >= 2**64 else int(np.searchsorted(keys, np.uint64(hi)))
        parts.append(np.array(mapped[start:end]))
        del keys, mapped
    records = np.concatenate(parts) if parts else np.empty(0, dtype=dtype)
    return records[np.argsort(records["key"], kind="stable")]


def equal_key_runs(keys: np.ndarray) -> Iterator[tuple[int, int]]:
    """(start, end) of each run of two or more equal keys in a sorted array."""
    if keys.size < 2:
        return
    cuts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [keys.size]))
    for start, end in zip(starts[ends - starts > 1], ends[ends - starts > 1], strict=True):
        yield int(start), int(end)


HEAD = struct.Struct("<QQII")  # order, exact key, shingle count, prompt id bytes


class DocWriter:
    """`docs/<rank>.bin`: a valid document's band keys, prompt id and shingles, by offset."""

    def __init__(self, path: Path, rank: int, bands: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = path.open("wb")
        self.rank, self.no_bands = rank, bytes(8 * bands)
        self.offset = 0

    def add(self, order: int, exact: int, bands: list[int], shingles: bytes, prompt_id: str) -> int:
        """Append one entry; returns its loc."""
        pid = prompt_id.encode()
        band_bytes = np.asarray(bands, dtype=np.uint64).tobytes() if bands else self.no_bands
        entry = HEAD.pack(order, exact, len(shingles) // 8, len(pid)) + band_bytes + pid + shingles
        loc = self.rank << LOC_BITS | self.offset
        self.file.write(entry)
        self.offset += len(entry)
        return loc

    def close(self) -> None:
        self.file.close()


@dataclass
class DocEntry:
    order: int
    exact: int
    bands: np.ndarray  # uint64, one key per band
    prompt_id: str
    loc: int
    shingle_count: int
    shingle_offset: int


class DocReader:
    """Reads entries of every task's `docs/<rank>.bin` by loc, with pread (no mapping, so the
    reader's memory does not grow with the files)."""

    def __init__(self, folder: Path, bands: int) -> None:
        self.folder, self.bands = folder, bands
        self.fds: dict[int, int] = {}

    def _fd(self, rank: int) -> int:
        if rank not in self.fds:
            self.fds[rank] = os.open(self.folder / f"{rank:05d}.bin", os.O_RDONLY)
        return self.fds[rank]

    def entry(self, loc: int) -> DocEntry:
        fd, offset = self._fd(loc >> LOC_BITS), loc & ((1 << LOC_BITS) - 1)
        size = HEAD.size + 8 * self.bands
        head = os.pread(fd, size, offset)
        order, exact, count, id_len = HEAD.unpack_from(head)
        bands = np.frombuffer(head, dtype=np.uint64, offset=HEAD.size)
        prompt_id = os.pread(fd, id_len, offset + size).decode()
        return DocEntry(order, exact, bands, prompt_id, loc, count, offset + size + id_len)

    def shingles(self, entry: DocEntry) -> np.ndarray:
        fd = self._fd(entry.loc >> LOC_BITS)
        data = os.pread(fd, 8 * entry.shingle_count, entry.shingle_offset)
        return np.frombuffer(data, dtype=np.uint64)

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


# Stage 2 and 3: events and duplicate verdicts ----------------------------------------------


class EventWriter:
    """One buckets task's events of one kind: `events/<kind>-<rank>-<chunk>.parquet`, each chunk
    sorted by (order, kind, other) and at most `chunk` events, so a task's memory stays bounded
    however many pairs its buckets verify. Chunks are written under a temporary name and
    renamed, so a killed task never leaves a file that looks complete."""

    def __init__(self, folder: Path, name: str, chunk: int = 250_000) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(f"{name}-*.parquet"):  # from an earlier, killed attempt
            old.unlink()
        self.folder, self.name, self.chunk = folder, name, chunk
        self.events: list[Event] = []
        self.chunks = self.count = 0

    def add(self, event: Event) -> None:
        self.events.append(event)
        self.count += 1
        if len(self.events) == self.chunk:
            self._flush()

    def _flush(self) -> None:
        self.events.sort(key=lambda e: (e[0], e[1], e[2]))
        columns = (
            list(zip(*self.events, strict=True)) if self.events else [[] for _ in EVENT_SCHEMA]
        )
        table = pa.table(
            {f.name: pa.array(c, type=f.type) for f, c in zip(EVENT_SCHEMA, columns, strict=True)}
        )
        _write_table(self.folder / f"{self.name}-{self.chunks:05d}.parquet", table)
        self.chunks += 1
        self.events = []

    def close(self) -> None:
        if self.events or not self.chunks:
            self._flush()


def read_events(path: Path) -> Iterator[Event]:
    return _rows(path)


class DupWriter:
    """`dups.parquet`: (order, reason, duplicate_of, similarity) rows in prompt order."""

    def __init__(self, path: Path, batch: int = 8192) -> None:
        self.path, self.tmp = path, path.with_name(path.name + ".tmp")
        self.writer = pq.ParquetWriter(self.tmp, DUP_SCHEMA)
        self.rows: list[tuple[int, str, str, float]] = []
        self.batch = batch

    def add(self, order: int, reason: str, duplicate_of: str, similarity: float) -> None:
        self.rows.append((order, reason, duplicate_of, similarity))
        if len(self.rows) == self.batch:
            self._flush()

    def _flush(self) -> None:
        columns = list(zip(*self.rows, strict=True)) if self.rows else [[] for _ in DUP_SCHEMA]
        self.writer.write_table(
            pa.table(
                {f.name: pa.array(c, type=f.type) for f, c in zip(DUP_SCHEMA, columns, strict=True)}
            )
        )
        self.rows = []

    def close(self) -> None:
        self._flush()
        self.writer.close()
        self.tmp.replace(self.path)


def read_dups(path: Path) -> Iterator[tuple[int, str, str, float]]:
    return _rows(path)


def read_records(path: Path) -> Iterator[dict]:
    """One task's records in prompt order, a batch at a time."""
    if not path.is_file():  # a task that read no rows writes no file
        return
    for batch in pq.ParquetFile(path).iter_batches(batch_size=2048):
        yield from batch.to_pylist()


def write_task_note(path: Path, text: str) -> None:
    """`errors/<stage>-<rank>.txt` (a task's KahaniError), `memory/<stage>/<rank>.txt` (its
    peak RSS in bytes) or `notes/skipped.txt` (how many repeated input rows were kept once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def read_task_notes(folder: Path) -> dict[str, str]:
    """File stem -> text of every note in a folder."""
    if not folder.is_dir():
        return {}
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.txt"))}


def count_records(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows if path.is_file() else 0


def _rows(path: Path) -> Iterator[tuple]:
    for batch in pq.ParquetFile(path).iter_batches(batch_size=8192):
        columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        yield from zip(*columns, strict=True)


def _write_table(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
