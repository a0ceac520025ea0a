"""Reading factory datasets, and token shards on disk.

Inputs: a `datasets.save_to_disk` directory (a DatasetDict with train/validation[/test] or a
single Dataset); a `.jsonl`/`.json`/`.parquet`/`.csv` file; a directory of such files (named
`train.*`, `validation.*` to give splits, else all rows are pooled); or a `.txt` file whose
documents are separated by blank lines. Without a validation split, rows are split by a hash
of their `id` (or of their text), so the split never changes between runs.

Shard format (`*.bin`): a 24-byte little-endian header (magic `KAHANITK`, uint32 version,
uint32 bytes per token, uint64 token count), then the tokens as uint16 or uint32. Each
document is stored as `<bos> text <eos>`.
"""

import csv
import hashlib
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from factory.errors import KahaniError
from trainer.tokenizer import TextTokenizer

Row = dict[str, Any]
MAGIC = b"KAHANITK"
VERSION = 1
HEADER = struct.Struct("<8sIIQ")
SHARD_TOKENS = 100_000_000  # tokens per shard file


def _read_file(path: Path) -> list[Row]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if suffix in (".jsonl", ".json"):
        text = path.read_text(encoding="utf-8").strip()
        if suffix == ".json" and text.startswith("["):
            return json.loads(text)
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as err:
            raise KahaniError(
                f"{path} is not JSON lines ({err}); give one JSON object per line"
            ) from err
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    if suffix == ".txt":
        blocks = path.read_text(encoding="utf-8").split("\n\n")
        return [{"text": b.strip()} for b in blocks if b.strip()]
    raise KahaniError(
        f"{path}: unknown data format; give a .jsonl, .parquet, .csv or .txt file or a "
        "dataset directory"
    )


def _read_splits(path: Path) -> dict[str, list[Row]]:
    if not path.exists():
        raise KahaniError(f"{path} does not exist; give a factory dataset directory or a data file")
    if path.is_file():
        return {"all": _read_file(path)}
    if (path / "dataset_dict.json").exists() or (path / "dataset_info.json").exists():
        import datasets

        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            return {name: split.to_list() for name, split in loaded.items()}
        return {"all": loaded.to_list()}
    files = sorted(
        p for p in path.iterdir() if p.suffix.lower() in (".jsonl", ".json", ".parquet", ".csv")
    )
    if not files:
        raise KahaniError(
            f"{path} holds no dataset, .jsonl or .parquet files; run `factory export` first"
        )
    names = {p.stem for p in files}
    if {"train", "validation"} <= names:
        return {p.stem: _read_file(p) for p in files}
    return {"all": [row for p in files for row in _read_file(p)]}


def _hash_fraction(row: Row) -> float:
    key = (
        str(row["id"])
        if row.get("id") is not None
        else json.dumps(row, sort_keys=True, default=str)
    )
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64


def read_rows(path: Path, val_fraction: float = 0.05) -> dict[str, list[Row]]:
    """Rows of the train and validation splits; a test split is left alone for the judge."""
    splits = _read_splits(path)
    if "train" in splits and "validation" in splits:
        train, val = splits["train"], splits["validation"]
    else:
        rows = splits.get("train", splits.get("all", []))
        keyed = sorted(((_hash_fraction(r), i) for i, r in enumerate(rows)))
        val_idx = {i for h, i in keyed if h < val_fraction} or (
            {keyed[0][1]} if len(keyed) > 1 else set()
        )
        if len(val_idx) == len(rows):  # a tiny file: never hold out every row
            val_idx = set()
        train = [r for i, r in enumerate(rows) if i not in val_idx]
        val = [r for i, r in enumerate(rows) if i in val_idx]
    if not train:
        raise KahaniError(f"{path} has no rows; export some data with `factory export` first")
    return {"train": train, "validation": val}


def column(rows: list[Row], name: str, path: Path) -> list[Any]:
    """The non-empty values of one column; an error naming the columns there are otherwise."""
    values = [r[name] for r in rows if r.get(name)]
    if not values:
        seen = sorted({k for r in rows[:100] for k in r})
        raise KahaniError(
            f"{path} has no '{name}' column (columns: {', '.join(seen) or 'none'}); "
            f"export it with `factory export` or add a '{name}' field to each row"
        )
    return values


def token_dtype(vocab_size: int, requested: str | None = None) -> np.dtype:
    """uint16 while every id fits, else uint32; a requested dtype too small is an error."""
    name = requested or ("uint16" if vocab_size <= 65_536 else "uint32")
    dtype = np.dtype(name)
    if vocab_size - 1 > np.iinfo(dtype).max:
        raise KahaniError(
            f"a vocabulary of {vocab_size} tokens does not fit {name}; "
            "use --dtype uint32 or leave it out"
        )
    return dtype


def _documents(tok: TextTokenizer, texts: list[str], batch: int = 1024) -> Iterator[np.ndarray]:
    for start in range(0, len(texts), batch):
        for ids in tok.encode_batch(texts[start : start + batch]):
            yield np.asarray([tok.bos_id, *ids, tok.eos_id], dtype=np.int64)


def write_shards(
    tok: TextTokenizer, texts: list[str], out: Path, prefix: str, dtype: np.dtype
) -> dict[str, Any]:
    """Tokenize `texts` into `out/{prefix}_000.bin`...; returns counts for meta.json."""
    shards: list[str] = []
    pending: list[np.ndarray] = []
    pending_tokens = total = 0

    def flush() -> None:
        nonlocal pending, pending_tokens
        name = f"{prefix}_{len(shards):03d}.bin"
        tokens = np.concatenate(pending).astype(dtype)
        with open(out / name, "wb") as f:
            f.write(HEADER.pack(MAGIC, VERSION, dtype.itemsize, len(tokens)))
            f.write(tokens.tobytes())
        shards.append(name)
        pending, pending_tokens = [], 0

    for doc in _documents(tok, texts):
        pending.append(doc)
        pending_tokens += len(doc)
        total += len(doc)
        if pending_tokens >= SHARD_TOKENS:
            flush()
    if pending:
        flush()
    return {
        "shards": shards,
        "tokens": total,
        "documents": len(texts),
        "bytes": sum(len(t.encode("utf-8")) for t in texts),
    }


def read_shard(path: Path) -> np.memmap:
    """Memory-map one shard's tokens after checking its header."""
    try:
        with open(path, "rb") as f:
            magic, version, itemsize, count = HEADER.unpack(f.read(HEADER.size))
    except (OSError, struct.error) as err:
        raise KahaniError(f"cannot read shard {path} ({err}); run `trainer prepare` again") from err
    if magic != MAGIC or version != VERSION or itemsize not in (2, 4):
        raise KahaniError(f"{path} is not a kahani token shard; run `trainer prepare` again")
    expected = HEADER.size + count * itemsize
    if path.stat().st_size != expected:
        raise KahaniError(
            f"shard {path} is truncated ({path.stat().st_size} of {expected} bytes); "
            "run `trainer prepare` again"
        )
    dtype = np.uint16 if itemsize == 2 else np.uint32
    return np.memmap(path, dtype=dtype, mode="r", offset=HEADER.size, shape=(count,))


def prepare(
    data: Path, tok: TextTokenizer, out: Path, val_fraction: float = 0.05, dtype: str | None = None
) -> dict[str, Any]:
    """Token shards for the train and validation splits plus `meta.json` describing them."""
    np_dtype = token_dtype(tok.vocab_size, dtype)
    rows = read_rows(data, val_fraction)
    out.mkdir(parents=True, exist_ok=True)
    splits = {}
    for name, split_rows in rows.items():
        texts = column(split_rows, "text", data) if split_rows else []
        splits[name] = (
            write_shards(tok, texts, out, name, np_dtype)
            if texts
            else {"shards": [], "tokens": 0, "documents": 0, "bytes": 0}
        )
    meta = {
        "version": VERSION,
        "source": str(data),
        "vocab_size": tok.vocab_size,
        "dtype": np_dtype.name,
        "splits": splits,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    tok.hf.save_pretrained(str(out / "tokenizer"))
    return meta
