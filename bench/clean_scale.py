"""Cleaning past one process: the in-process `factory clean` against the distributed path
(datatrove's local executor) with 1 and 2 tasks, side by side in one run.

Input: synthetic Devanagari stories with 10% planted near-duplicates (bench/devanagari_corpus.py,
the dedup benchmark's generator), written as JSONL. Each contender runs in a fresh process:

- distributed from JSONL, 2 tasks: `factory.scale.pipeline.clean_at_scale` straight from the
  file; it writes the run folder (rows in bulk, then verdicts) that the others start from
- in-process: `factory.clean.clean_store` on a copy of that run folder, the default path
- distributed, 1 task / 2 tasks: `clean_at_scale` on a copy of the run folder, local executor

`factory clean FILE` without --executor first imports the file with `factory.importer` (every
row read into memory, then stored in one transaction); its rows/s are measured on the first
20,000 rows and printed, as the time to import is part of that path's cost.

Printed per size: documents/s of wall time and the ratio to in-process; CPU seconds per 1,000
documents over all the contender's processes (the ratio that does not depend on what else the
machine runs: on shared cores, wall time does); the peak RSS of the largest process (driver and
task processes alike); recall/precision of the removed documents on planted near-duplicates (a
planted copy is a positive when its true Jaccard with its source reaches the threshold); and
whether every contender kept exactly the in-process set. Then, across the two largest sizes,
the memory each contender adds per extra kept document: how its cost grows.

    pip install -e ".[scale]"
    python bench/clean_scale.py                         # 100,000 and 1,000,000 documents
    python bench/clean_scale.py --sizes 20000 100000    # quicker
    python bench/clean_scale.py --inputs /tmp/corpora   # keep the generated JSONL for next time
"""

import argparse
import itertools
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devanagari_corpus import make_corpus

from factory.clean import Cleaner, clean_store, settings_for
from factory.dedup import jaccard, shingles
from factory.importer import import_file
from factory.languages import get_language
from factory.scale import peak_rss_bytes
from factory.settings import load_config
from factory.store import RunStore

CONTENDERS = {  # name -> tasks (None: in-process); the first one makes the run folder
    "distributed from JSONL, 2 tasks": 2,
    "in-process": None,
    "distributed, 1 task": 1,
    "distributed, 2 tasks": 2,
}
SHOWN = [
    "in-process",
    "distributed, 1 task",
    "distributed, 2 tasks",
    "distributed from JSONL, 2 tasks",
]
IMPORT_SAMPLE = 20_000


def run_contender(name: str, run_dir: Path, source: Path, threshold: float) -> dict:
    """Inside a fresh process: clean, and report seconds and peak RSS of every process."""
    from factory.scale.options import ScaleOptions
    from factory.scale.pipeline import clean_at_scale

    flags = {"dedup_threshold": threshold}
    start = time.perf_counter()
    task_peak = 0  # the largest of the task processes (the driver may run tasks itself)
    if CONTENDERS[name] is None:
        config = load_config(run_dir)
        store = RunStore.open(run_dir / "store.sqlite", write=True)
        clean_store(store, Cleaner.for_run(config, settings_for(config, flags)), threshold)
        store.close()
    else:
        options = ScaleOptions(executor="local", tasks=CONTENDERS[name])
        if "JSONL" in name:
            lang, out, given = "hindi", run_dir, str(source)
        else:
            lang, out, given = None, None, str(run_dir)
        result = clean_at_scale(given, lang, out, None, flags, options)
        task_peak = max(result.peak_rss.values())
    seconds = time.perf_counter() - start
    cpu = sum(
        usage.ru_utime + usage.ru_stime  # pool workers are reaped children of this process
        for usage in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    )
    return {"seconds": seconds, "cpu": cpu, "peak": max(peak_rss_bytes(), task_peak)}


def removed_and_kept(run_dir: Path) -> tuple[set[int], int]:
    """Indices of documents removed as (near-)duplicates, and the number kept."""
    store = RunStore.open(run_dir / "store.sqlite")
    try:
        verdicts = store.verdicts()
    finally:
        store.close()
    removed = {
        int(pid[1:])
        for pid, reason in verdicts.items()
        if reason in ("duplicate", "near_duplicate")
    }
    return removed, sum(reason is None for reason in verdicts.values())


def make_input(n: int, threshold: float, source: Path) -> None:
    """Inside a fresh process (the texts take GBs at a million): write the JSONL and, beside it,
    the planted copies and the positives."""
    texts, planted = make_corpus(n)
    positives = [
        copy
        for copy, original in planted.items()
        if jaccard(shingles(texts[copy]), shingles(texts[original])) >= threshold
    ]
    with source.open("w", encoding="utf-8") as f:
        for i, text in enumerate(texts):
            f.write(json.dumps({"id": f"d{i}", "text": text}, ensure_ascii=False) + "\n")
    truth = {"planted": len(planted), "positives": positives}
    source.with_suffix(".truth.json").write_text(json.dumps(truth))


def bench_size(n: int, threshold: float, root: Path, inputs: Path) -> dict[str, dict]:
    source = inputs / f"stories-{n}.jsonl"
    if not source.with_suffix(".truth.json").is_file():
        _in_fresh_process("--make", str(n), str(source), "--threshold", str(threshold))
    truth = json.loads(source.with_suffix(".truth.json").read_text())
    positives = set(truth["positives"])
    sample = root / "sample.jsonl"
    with source.open(encoding="utf-8") as f, sample.open("w", encoding="utf-8") as out:
        out.writelines(itertools.islice(f, IMPORT_SAMPLE))
    start = time.perf_counter()
    import_file(sample, get_language("hindi"), root / "sample", None)
    import_rate = min(n, IMPORT_SAMPLE) / (time.perf_counter() - start)
    shutil.rmtree(root / "sample")
    print(
        f"\n{n:,} docs, {truth['planted']:,} planted copies, {len(positives):,} positives; "
        f"the importer stores {import_rate:,.0f} rows/s ({n / import_rate / 60:,.1f} min for all)",
        flush=True,
    )

    results: dict[str, dict] = {}
    made = root / f"from-jsonl-{n}"
    for name in CONTENDERS:
        run_dir = made
        if "JSONL" not in name:
            run_dir = root / f"{name.replace(' ', '_').replace(',', '')}-{n}"
            shutil.copytree(made, run_dir)
        out = _in_fresh_process(
            "--contender", name, str(run_dir), str(source), "--threshold", str(threshold)
        )
        result = json.loads(out.strip().splitlines()[-1])
        removed, kept = removed_and_kept(run_dir)
        tp = len(removed & positives)
        result |= {
            "rate": n / result["seconds"],
            "recall": tp / max(len(positives), 1),
            "precision": tp / max(len(removed), 1),
            "kept": kept,
            "removed": removed,
        }
        results[name] = result
        if run_dir != made:
            shutil.rmtree(run_dir)
    shutil.rmtree(made)

    base = results["in-process"]
    print(
        f"{'':33} {'docs/s':>7} {'vs in-proc.':>11} {'CPU s/1k docs':>14} {'vs in-proc.':>11} "
        f"{'peak MiB/process':>17} {'recall':>7} {'precision':>9} {'same kept set':>14}"
    )
    for name in SHOWN:
        r = results[name]
        same = "yes" if r["removed"] == base["removed"] and r["kept"] == base["kept"] else "NO"
        cpu = r["cpu"] / n * 1000
        print(
            f"{name:33} {r['rate']:7,.0f} {r['rate'] / base['rate']:10.2f}x {cpu:14.2f} "
            f"{base['cpu'] / r['cpu']:10.2f}x {r['peak'] / 2**20:17,.0f} {r['recall']:7.4f} "
            f"{r['precision']:9.4f} {same:>14}",
            flush=True,
        )
    return results


def _in_fresh_process(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"{' '.join(args[:2])} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--contender", nargs=3, metavar=("NAME", "RUN_DIR", "SOURCE"))
    parser.add_argument("--make", nargs=2, metavar=("DOCS", "SOURCE"))
    parser.add_argument("--inputs", type=Path, help="keep (and reuse) the generated JSONL here")
    args = parser.parse_args()
    if args.make:
        make_input(int(args.make[0]), args.threshold, Path(args.make[1]))
        return
    if args.contender:
        name, run_dir, source = args.contender
        print(json.dumps(run_contender(name, Path(run_dir), Path(source), args.threshold)))
        return

    with tempfile.TemporaryDirectory(prefix="clean-scale-") as tmp:
        inputs = args.inputs or Path(tmp)
        inputs.mkdir(parents=True, exist_ok=True)
        by_size = {n: bench_size(n, args.threshold, Path(tmp), inputs) for n in sorted(args.sizes)}
    if len(by_size) >= 2:
        small, large = sorted(by_size)[-2:]
        print(f"\nmemory added per extra kept document, {small:,} -> {large:,} documents:")
        for name in SHOWN:
            a, b = by_size[small][name], by_size[large][name]
            per_doc = (b["peak"] - a["peak"]) / max(b["kept"] - a["kept"], 1)
            print(
                f"{name:33} {per_doc:8,.0f} bytes  ({a['peak'] / 2**20:,.0f} -> "
                f"{b['peak'] / 2**20:,.0f} MiB)"
            )


if __name__ == "__main__":
    main()
