"""`factory clean --executor`: the distributed clean keeps exactly what the in-process one keeps,
survives killed tasks, and runs on datatrove's local and Ray executors."""

import heapq
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import BIN, assert_one_line_error, run_cli
from test_dedup import corpus

from factory.clean import Cleaner, clean_store, settings_for
from factory.dedup import jaccard, shingles
from factory.importer import import_file
from factory.languages import get_language
from factory.scale import scale_advice
from factory.scale.clusters import greedy_duplicates
from factory.scale.formats import COPY, PAIR, REP, SKIP, EventWriter, read_events
from factory.scale.options import ScaleOptions
from factory.settings import load_config
from factory.store import RunStore

pytest.importorskip("datatrove", reason='pip install -e ".[scale]"')

from factory.scale.pipeline import clean_at_scale

CORPUS = Path(__file__).parent / "fixtures" / "corpus"


def store_tables(run_dir: Path) -> dict[str, list]:
    """Everything `factory stats`, `report` and `export` read, order-independent."""
    db = sqlite3.connect(run_dir / "store.sqlite")
    try:
        return {
            "verdicts": sorted(db.execute("SELECT * FROM verdicts").fetchall(), key=repr),
            "prompts": sorted(db.execute("SELECT * FROM prompts").fetchall(), key=repr),
            "responses": sorted(
                db.execute(
                    "SELECT prompt_id, request_key, text, finish_reason, prompt_tokens,"
                    " completion_tokens, model, provider, batch, attempts FROM responses"
                ).fetchall(),
                key=repr,
            ),
        }
    finally:
        db.close()


def kept_ids(run_dir: Path) -> set[str]:
    return {v[0] for v in store_tables(run_dir)["verdicts"] if v[1] is None}


# Stories built so that the greedy rule and connected components disagree ------------------


def planted_cases() -> tuple[list[dict], dict[str, float]]:
    """Rows with chains, copies of removed documents and ties, and the Jaccard of each pair.

    150 distinct words make 148 word 3-grams; s substitutions 10 words apart change 3s of
    them, so J = (148 - 3s) / (148 + 3s): 5 substitutions give 0.82, 10 give 0.66.
    """
    rng = np.random.default_rng(11)
    letters = [chr(c) for c in range(0x0915, 0x0939)]
    signs = ["\u093e", "\u093f", "\u0940", "\u0947", "\u094b", "\u094d\u092f", "\u0902"]
    pool = sorted(
        {"".join(rng.choice(letters) + rng.choice(signs) for _ in range(3)) for _ in range(5000)}
    )
    rng.shuffle(pool)
    fresh = iter(pool[1000:])

    def doc() -> list[str]:
        return [next(fresh) for _ in range(150)]

    def edit(words: list[str], positions: range) -> list[str]:
        out = list(words)
        for p in positions:
            out[p] = next(fresh)
        return out

    a = doc()
    b = edit(a, range(10, 60, 10))  # A~B
    c = edit(b, range(75, 125, 10))  # B~C, A!~C: greedy keeps C, components would not
    k = doc()
    r = edit(k, range(10, 60, 10))  # r ~ K: removed in favour of K
    m = edit(r, range(75, 95, 10))  # m ~ r more than K ~ r, m !~ K: kept
    d = doc()
    p = edit(d, range(10, 40, 10))  # D is as similar to P as to Q; P !~ Q
    q = edit(d, range(100, 130, 10))
    texts = {
        "chain-a": a,
        "chain-b": b,
        "chain-c": c,
        "copy-k": k,
        "copy-r": r,
        "copy-m": m,
        "tie-p": p,
        "tie-q": q,
        "tie-d": d,
    }
    rows = [{"id": name, "text": " ".join(words) + "।"} for name, words in texts.items()]
    # A later copy of r (same text once normalized): its candidates are K and m, not r.
    rows.append({"id": "copy-c", "text": "  " + " ".join(r).upper() + "।  "})
    rows.append({"id": "copy-k2", "text": rows[3]["text"]})  # exact duplicate of a kept doc
    sim = {
        f"{x}|{y}": jaccard(shingles(" ".join(texts[x])), shingles(" ".join(texts[y])))
        for x, y in [
            ("chain-a", "chain-b"),
            ("chain-b", "chain-c"),
            ("chain-a", "chain-c"),
            ("copy-k", "copy-r"),
            ("copy-r", "copy-m"),
            ("copy-k", "copy-m"),
            ("tie-p", "tie-d"),
            ("tie-q", "tie-d"),
            ("tie-p", "tie-q"),
        ]
    }
    return rows, sim


def synthetic_rows(n: int) -> list[dict]:
    """n Devanagari stories, a tenth planted near-copies, then the planted cases, exact copies
    of removed near-duplicates, and an identical row twice without id (the importer keeps one)."""
    texts, planted = corpus(n, seed=1)
    rows = [{"id": f"doc-{i:05d}", "text": t} for i, t in enumerate(texts)]
    cases, _ = planted_cases()
    rows[n // 2 : n // 2] = cases
    rows += [{"id": f"recopy-{c}", "text": texts[c].replace(" ", "  ")} for c in list(planted)[:10]]
    rows += [{"text": texts[3]}, {"text": texts[3]}]
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def clean_in_process(source: Path, run_dir: Path) -> None:
    import_file(source, get_language("hindi"), run_dir, None)
    config = load_config(run_dir)
    store = RunStore.open(run_dir / "store.sqlite", write=True)
    try:
        clean_store(store, Cleaner.for_run(config, settings_for(config, {})), 0.8)
    finally:
        store.close()


def test_planted_cases_are_what_they_claim():
    _, sim = planted_cases()
    assert sim["chain-a|chain-b"] >= 0.8 and sim["chain-b|chain-c"] >= 0.8
    assert sim["chain-a|chain-c"] < 0.8
    assert sim["copy-r|copy-m"] > sim["copy-k|copy-r"] >= 0.8 > sim["copy-k|copy-m"]
    assert sim["tie-p|tie-d"] == sim["tie-q|tie-d"] >= 0.8 > sim["tie-p|tie-q"]


@pytest.mark.parametrize("tasks", [1, 4])
def test_distributed_clean_keeps_exactly_the_in_process_set_on_planted_duplicates(tmp_path, tasks):
    source = write_jsonl(tmp_path / "stories.jsonl", synthetic_rows(3000))
    clean_in_process(source, tmp_path / "in-process")
    shutil.copytree(tmp_path / "in-process", tmp_path / "run")

    options = ScaleOptions(executor="local", tasks=tasks)
    from_run = clean_at_scale(str(tmp_path / "run"), None, None, None, {}, options)
    from_file = clean_at_scale(str(source), "hindi", tmp_path / "from-file", None, {}, options)

    expected = store_tables(tmp_path / "in-process")
    reasons = {v[1] for v in expected["verdicts"]}
    assert {"near_duplicate", "duplicate", None} <= reasons
    assert store_tables(tmp_path / "run") == expected  # verdicts, with details and Jaccard
    assert store_tables(tmp_path / "from-file") == expected  # and the imported rows too
    assert not from_run.work.exists() and not from_file.work.exists()
    assert set(from_run.peak_rss) == {"signatures", "buckets", "clusters", "write"}

    # The greedy rule, not connected components: C is kept though B links it to A.
    kept = kept_ids(tmp_path / "run")
    assert {"chain-a", "chain-c", "copy-k", "copy-m", "tie-p", "tie-q"} <= kept
    # (reason, duplicate_of, similarity) of each verdict
    verdicts = {v[0]: (v[1], v[5], v[6]) for v in expected["verdicts"]}
    assert verdicts["chain-b"][:2] == ("near_duplicate", "chain-a")
    assert verdicts["copy-r"][:2] == ("near_duplicate", "copy-k")  # m comes later
    assert verdicts["copy-c"][:2] == ("near_duplicate", "copy-m")  # r's copy: K or m, not r
    assert verdicts["tie-d"][:2] == ("near_duplicate", "tie-p")  # equal Jaccard: the earlier
    assert verdicts["copy-k2"] == ("duplicate", "copy-k", 1.0)


def test_greedy_pass_reproduces_in_process_rule_from_events():
    """Events as the buckets stage writes them: (order, kind, other, J, copies, id, other id)."""
    events = [
        (1, REP, 0, 1.0, 1, "A", ""),
        (2, PAIR, 1, 0.9, 0, "B", "A"),  # B ~ A
        (3, PAIR, 2, 0.85, 0, "C", "B"),  # C ~ B only: B is removed, so C is kept
        (4, PAIR, 3, 0.95, 0, "D", "C"),  # D ~ C
        (5, COPY, 1, 1.0, 0, "A2", "A"),  # copy of kept A
        (6, SKIP, 1, 0.0, 0, "", ""),
        (7, REP, 0, 1.0, 2, "E", ""),
        (7, PAIR, 3, 0.8, 0, "E", "C"),  # E ~ C, which is kept: E is removed
        (8, PAIR, 7, 0.9, 0, "F", "E"),  # F ~ E only: E removed, F kept
        (9, COPY, 7, 1.0, 0, "E2", "E"),  # copy of E: candidates C (0.8) and F (0.9)
        (9, SKIP, 7, 0.0, 0, "", ""),
        (10, COPY, 7, 1.0, 0, "E3", "E"),
    ]
    assert list(greedy_duplicates(events)) == [
        (2, "near_duplicate", "A", 0.9),
        (4, "near_duplicate", "C", 0.95),
        (5, "duplicate", "A", 1.0),
        (6, "skip", "", 0.0),
        (7, "near_duplicate", "C", 0.8),
        (9, "skip", "", 0.0),  # a repeated row, but it still uses up one of E's copies
        (10, "near_duplicate", "F", 0.9),
    ]


def test_bucket_events_spill_to_sorted_files_of_bounded_size(tmp_path):
    """However many pairs a bucket verifies, a task holds at most one chunk of events."""
    rng = np.random.default_rng(0)
    events = [(int(o), PAIR, int(o) + 100, 0.9, 0, f"d{o}", "x") for o in rng.permutation(10)]
    writer = EventWriter(tmp_path, "band_000-00000", chunk=3)
    for event in events:
        writer.add(event)
        assert len(writer.events) < 3
    writer.close()
    files = sorted(tmp_path.glob("*.parquet"))
    assert len(files) == 4
    for f in files:
        orders = [e[0] for e in read_events(f)]
        assert orders == sorted(orders)
    merged = heapq.merge(*(read_events(f) for f in files), key=lambda e: e[0])
    assert [e[0] for e in merged] == list(range(10))
    EventWriter(tmp_path, "band_000-00000").close()  # a rerun replaces the earlier chunks
    assert len(list(tmp_path.glob("*.parquet"))) == 1


@pytest.mark.parametrize(
    ("fixture", "lang", "tasks"),
    [("hindi_bad_cases.jsonl", "hindi", 4), ("hinglish.jsonl", "hinglish", 1)],
)
def test_cli_distributed_clean_of_a_fixture_matches_in_process_stats_and_export(
    tmp_path, fixture, lang, tasks
):
    source = str(CORPUS / fixture)
    one = run_cli("factory", "clean", source, "--lang", lang, "--out", "one")
    assert one.returncode == 0, one.stderr
    many = run_cli(
        "factory",
        *("clean", source, "--lang", lang, "--out", "many"),
        *("--executor", "local", "--tasks", str(tasks)),
    )
    assert many.returncode == 0, many.stderr
    assert "peak MiB per process: signatures" in many.stdout
    assert store_tables(tmp_path / "one") == store_tables(tmp_path / "many")
    stats = [run_cli("factory", "stats", run).stdout for run in ("one", "many")]
    assert stats[0] == stats[1] and "kept" in stats[0]
    for run in ("one", "many"):
        assert run_cli("factory", "export", run).returncode == 0
    cards = [(tmp_path / r / "dataset" / "README.md").read_text() for r in ("one", "many")]
    assert cards[0].replace("(one)", "(many)").replace('"runs/one', '"runs/many') == cards[1]
    assert (tmp_path / "one/dataset/jsonl/train.jsonl").read_text() == (
        tmp_path / "many/dataset/jsonl/train.jsonl"
    ).read_text()


def test_decontamination_rejects_the_same_rows_as_in_process(tmp_path):
    """Validation, then decontamination, then deduplication, in both paths: a row quoting an
    evaluation prompt is `contaminated`, and never stands for its near-copies."""
    rows = synthetic_rows(200)
    write_jsonl(tmp_path / "s.jsonl", rows)
    quoted = [" ".join(rows[i]["text"].split()[20:40]) for i in (5, 17)]
    (tmp_path / "evals.txt").write_text("\n".join(quoted) + "\n", encoding="utf-8")
    flags = ("--lang", "hindi", "--decontaminate", "evals.txt")
    one = run_cli("factory", "clean", "s.jsonl", *flags, "--out", "one")
    assert one.returncode == 0, one.stderr
    many = run_cli(
        "factory",
        "clean",
        "s.jsonl",
        *flags,
        "--out",
        "many",
        "--executor",
        "local",
        "--tasks",
        "2",
    )
    assert many.returncode == 0, many.stderr
    expected = store_tables(tmp_path / "one")
    contaminated = {v[0] for v in expected["verdicts"] if v[1] == "contaminated"}
    assert {rows[5]["id"], rows[17]["id"]} <= contaminated
    assert store_tables(tmp_path / "many") == expected


def test_a_killed_run_started_again_loses_and_duplicates_nothing(tmp_path):
    source = write_jsonl(tmp_path / "stories.jsonl", synthetic_rows(2400))
    clean_in_process(source, tmp_path / "in-process")
    args = [str(BIN / "factory"), "clean", str(source), "--lang", "hindi", "--out", "run"]
    args += ["--executor", "local", "--tasks", "4", "--workers", "2"]
    completions = tmp_path / "run" / "scale-work" / "logs" / "signatures" / "completions"
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 240
        while not (completions.is_dir() and any(completions.iterdir())):
            assert first.poll() is None, (tmp_path / "first.log").read_text()[-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.005)
        os.killpg(first.pid, signal.SIGKILL)  # the driver and its task processes
        first.wait()
    done = {p.name for p in completions.iterdir()}
    started = {p.stem for p in (tmp_path / "run/scale-work/docs").glob("*.bin")}
    assert len(done) < 4  # some signature tasks never finished...
    assert started - done  # ...and at least one was cut off half-way, its files on disk
    assert not (tmp_path / "run" / "store.sqlite").exists()

    again = run_cli("factory", *args[1:])
    assert again.returncode == 0, again.stderr
    assert "resuming the distributed clean" in again.stdout
    assert f"signatures 4 tasks ({len(done)} done before)" in again.stdout
    assert store_tables(tmp_path / "run") == store_tables(tmp_path / "in-process")


def test_distributed_clean_on_a_local_ray_instance(tmp_path):
    """A Ray instance the test starts on 127.0.0.1 (in a helper process, stopped at the end);
    the command connects to it with --ray-address."""
    pytest.importorskip("ray")
    # 127.0.0.1 only; the command joins with the token the head writes to ~/.ray/auth_token.
    env = os.environ | {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"}
    head = subprocess.Popen(
        [sys.executable, "-c", RAY_HEAD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        address = head.stdout.readline().strip()
        assert address.startswith("127.0.0.1:"), address
        source = write_jsonl(tmp_path / "stories.jsonl", synthetic_rows(300))
        clean_in_process(source, tmp_path / "in-process")
        result = run_cli(
            "factory",
            *("clean", str(source), "--lang", "hindi", "--out", "run"),
            *("--executor", "ray", "--tasks", "2", "--ray-address", address, "--mem-gb", "0.5"),
            env=env,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert store_tables(tmp_path / "run") == store_tables(tmp_path / "in-process")
    finally:
        head.stdin.close()  # the helper shuts its Ray instance down and exits
        head.wait(timeout=120)


RAY_HEAD = """
import sys, ray
ray.init(include_dashboard=False, num_cpus=2, object_store_memory=80 * 2**20)
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()
ray.shutdown()
"""


def test_slurm_executor_submits_job_arrays_that_clean_the_run(tmp_path):
    """Through a stand-in for sbatch/srun/scontrol that runs each job array here, in order
    (tests/slurm_standin.py): the launch scripts, the pickled stages and their dependencies."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    standin = Path(__file__).parent / "slurm_standin.py"
    for tool in ("sbatch", "srun", "scontrol"):
        (bin_dir / tool).write_text(f'#!/bin/sh\nexec "{sys.executable}" "{standin}" {tool} "$@"\n')
        (bin_dir / tool).chmod(0o755)
    source = write_jsonl(tmp_path / "stories.jsonl", synthetic_rows(200))
    clean_in_process(source, tmp_path / "in-process")
    env = os.environ | {
        "PATH": f"{bin_dir}{os.pathsep}{BIN}{os.pathsep}{os.environ['PATH']}",
        "SLURM_STANDIN_LOG": str(tmp_path / "slurm.log"),
    }
    result = run_cli(
        "factory",
        *("clean", str(source), "--lang", "hindi", "--out", "run"),
        *("--executor", "slurm", "--tasks", "2", "--slurm-partition", "cpu"),
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "submitted the four stages to Slurm" in result.stdout
    log = (tmp_path / "slurm.log").read_text()
    assert "job 0 task 1" in log  # the signatures array ran both of its tasks
    script = (tmp_path / "run/scale-work/logs/buckets/launch_script.slurm").read_text()
    assert "#SBATCH --partition=cpu" in script and "launch_pickled_pipeline" in script
    assert store_tables(tmp_path / "run") == store_tables(tmp_path / "in-process")


def test_rows_sharing_an_id_with_other_content_are_one_line_error(tmp_path):
    texts, _ = corpus(3, seed=2)
    rows = [{"id": "same", "text": texts[0]}, {"id": "other", "text": texts[1]}]
    rows.append({"id": "same", "text": texts[2]})
    write_jsonl(tmp_path / "s.jsonl", rows)
    result = run_cli("factory", "clean", "s.jsonl", "--lang", "hindi", "--executor", "local")
    assert_one_line_error(result, "row 3 of", "has the id of row 1", "own id")


def test_executor_flags_are_checked_with_one_line_errors(tmp_path):
    source = str(CORPUS / "hindi.jsonl")
    clean = ("factory", "clean", source, "--lang", "hindi", "--executor")
    assert_one_line_error(run_cli(*clean, "spark"), "--executor", "local")
    assert_one_line_error(run_cli(*clean, "local", "--tasks", "0"), "--tasks")
    assert_one_line_error(run_cli(*clean, "slurm"), "--slurm-partition")
    judged = run_cli(*clean, "local", "--judge", "openai:gpt-4o-mini")
    assert_one_line_error(judged, "--judge", "leave out --executor")
    alone = run_cli("factory", "clean", source, "--lang", "hindi", "--tasks", "4")
    assert_one_line_error(alone, "--tasks is for the distributed clean", "--executor")
    globbed = run_cli("factory", "clean", f"{CORPUS}/*.jsonl", "--lang", "hindi")
    assert_one_line_error(globbed, "add --executor local")
    nothing = run_cli("factory", "clean", "none/*.jsonl", "--lang", "hindi", "--executor", "local")
    assert_one_line_error(nothing, "matches no file")
    no_out = run_cli(
        "factory", "clean", f"{CORPUS}/*.jsonl", "--lang", "hindi", "--executor", "local"
    )
    assert_one_line_error(no_out, "give --out")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    work = run_cli(
        "factory", "clean", source, "--lang", "hindi", "--executor", "local", "--work", "mine"
    )
    assert_one_line_error(work, "not a kahani work folder")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_without_the_extra_the_flag_is_a_one_line_install_hint(tmp_path):
    hidden = tmp_path / "hide" / "datatrove"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('not installed')\n")
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(tmp_path / "hide"), *sys.path])}
    source = str(CORPUS / "hindi.jsonl")
    result = run_cli("factory", "clean", source, "--lang", "hindi", "--executor", "local", env=env)
    assert_one_line_error(result, 'pip install -e ".[scale]"')


def test_clean_says_when_the_distributed_path_is_advisable():
    assert scale_advice(20_000, available=8 * 2**30) is None
    note = scale_advice(3_000_000, available=64 * 2**30)
    assert "3,000,000 answers" in note and "7.5 GiB" in note and "--executor local" in note
    assert scale_advice(500_000, available=2 * 2**30)  # 1.3 GiB of 2 GiB: too tight
