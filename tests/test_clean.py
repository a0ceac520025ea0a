"""`factory clean`, `export` and `stats`: every rejection explained, datasets that load."""

import json
import re
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import yaml
from conftest import TEST_KEY, assert_one_line_error, run_cli

from factory.store import RunStore

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
BAD_CASES = CORPUS / "hindi_bad_cases.jsonl"


def verdicts(run_dir: Path) -> dict[str, str | None]:
    store = RunStore.open(run_dir / "store.sqlite")
    try:
        return store.verdicts()
    finally:
        store.close()


def test_each_planted_bad_case_gets_its_reason(tmp_path):
    result = run_cli("factory", "clean", str(BAD_CASES), "--lang", "hindi", "--out", "cleaned")
    assert result.returncode == 0, result.stderr
    assert "1 unreadable lines" in result.stdout
    found = verdicts(tmp_path / "cleaned")
    for line in BAD_CASES.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        assert (found[row["id"]] or "ok") == row["expect"], row["id"]
    corrupt = [pid for pid, reason in found.items() if reason == "corrupt_line"]
    assert corrupt == ["line-12"]  # reported with its line number, the rest processed


def test_an_input_without_a_text_column_names_the_columns_found(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text('{"id": "1", "kahani": "x", "lang": "hi"}\n', encoding="utf-8")
    result = run_cli("factory", "clean", str(data), "--lang", "hindi")
    assert_one_line_error(
        result, "no text or story or response or completion column", "id, kahani, lang"
    )


def test_an_empty_result_says_why_and_fails(tmp_path):
    data = tmp_path / "short.jsonl"
    data.write_text(
        "".join(json.dumps({"id": str(i), "text": "बहुत छोटी कहानी"}) + "\n" for i in range(3)),
        encoding="utf-8",
    )
    result = run_cli("factory", "clean", str(data), "--lang", "hindi")
    assert_one_line_error(result, "all 3 answers were rejected", "too_short 3")


def test_parquet_input_and_hindi_fixture_all_kept(tmp_path):
    rows = [json.loads(line) for line in (CORPUS / "hindi.jsonl").read_text().splitlines()]
    datasets.Dataset.from_list([{"id": r["id"], "story": r["text"]} for r in rows]).to_parquet(
        str(tmp_path / "stories.parquet")
    )
    result = run_cli("factory", "clean", "stories.parquet", "--lang", "hindi", "--out", "p")
    assert result.returncode == 0, result.stderr
    assert f"{len(rows)} kept, 0 rejected" in result.stdout


def test_export_round_trip_and_the_card_counts_equal_the_data(tmp_path):
    assert (
        run_cli("factory", "clean", str(BAD_CASES), "--lang", "hindi", "--out", "r").returncode == 0
    )
    result = run_cli("factory", "export", "r", "--validation", "0.2", "--test", "0.2")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "r" / "dataset"
    loaded = datasets.load_from_disk(str(out))
    kept = {pid for pid, reason in verdicts(tmp_path / "r").items() if reason is None}
    ids = [row_id for split in loaded.values() for row_id in split["id"]]
    assert sorted(ids) == sorted(kept)
    for split in loaded:
        parquet = pq.read_table(out / "data" / f"{split}-00000-of-00001.parquet").to_pylist()
        jsonl = [json.loads(x) for x in (out / "jsonl" / f"{split}.jsonl").read_text().splitlines()]
        assert [r["id"] for r in parquet] == [r["id"] for r in jsonl] == loaded[split]["id"]
    card = (out / "README.md").read_text(encoding="utf-8")
    header = yaml.safe_load(card.split("---")[1])
    assert header["language"] == ["hi"] and header["task_categories"] == ["text-generation"]
    assert set(loaded) == {"train", "validation", "test"}  # 20% each: none is empty
    for split in ("train", "validation", "test"):
        assert f"| {split} | {len(loaded[split]):,} |" in card
    assert "| near_duplicate | 1 |" in card and "| corrupt_line | 1 |" in card
    stats = run_cli("factory", "stats", "r").stdout
    assert re.search(rf"{len(kept)} kept, 11 rejected", stats)


def test_splits_are_stable_across_exports(tmp_path):
    run_cli("factory", "clean", str(CORPUS / "english.jsonl"), "--lang", "english", "--out", "e")
    run_cli("factory", "export", "e", "--out", "one")
    run_cli("factory", "export", "e", "--out", "two")
    one, two = (datasets.load_from_disk(str(tmp_path / d)) for d in ("one", "two"))
    assert {s: one[s]["id"] for s in one} == {s: two[s]["id"] for s in two}


def test_conversations_export_openai_fine_tuning_files_and_messages(tmp_path):
    result = run_cli(
        "factory", "clean", str(CORPUS / "hinglish.jsonl"), "--lang", "hinglish", "--out", "h"
    )
    assert result.returncode == 0, result.stderr
    assert run_cli("factory", "export", "h").returncode == 0
    out = tmp_path / "h" / "dataset"
    loaded = datasets.load_from_disk(str(out))
    train = loaded["train"]
    assert train[0]["messages"][0]["role"] == "user"
    lines = [json.loads(x) for x in (out / "openai" / "train.jsonl").read_text().splitlines()]
    assert len(lines) == len(train)
    for line, row in zip(lines, train, strict=True):
        assert list(line) == ["messages"]
        assert line["messages"] == row["messages"]
        assert {m["role"] for m in line["messages"]} <= {"user", "assistant"}
    header = yaml.safe_load((out / "README.md").read_text().split("---")[1])
    assert header["language"] == ["hi", "en"]


def test_push_to_hub_without_a_token_is_one_line(tmp_path, monkeypatch):
    run_cli("factory", "clean", str(CORPUS / "english.jsonl"), "--lang", "english", "--out", "e")
    env = {"PATH": "/usr/bin:/bin", "HF_HOME": str(tmp_path / "hf"), "HOME": str(tmp_path)}
    result = run_cli("factory", "export", "e", "--push-to-hub", "me/stories", env=env)
    assert_one_line_error(result, "--push-to-hub needs a Hugging Face token")


def test_generate_ends_in_a_dataset_whose_card_matches_and_rejects_explain_the_rest(
    llm_server, tmp_path
):
    # Every fifth answer is a refusal: it must show up as a reject, not vanish.
    from openai_server import default_responder

    def sometimes_refuse(body):
        text = default_responder(body)
        if len(body["messages"][-1]["content"]) % 5 == 0:
            return '{"story": "As an AI language model, I cannot write this story."}'
        return text

    llm_server.config.responder = sometimes_refuse
    result = run_cli(
        "factory",
        "generate",
        "--lang",
        "hindi",
        "--n",
        "80",
        "--base-url",
        llm_server.base_url,
        "--api-key",
        TEST_KEY,
    )
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "runs" / "hindi-gpt-4o-mini-seed0"
    loaded = datasets.load_from_disk(str(run_dir / "dataset"))
    found = verdicts(run_dir)
    kept = sorted(pid for pid, reason in found.items() if reason is None)
    assert sorted(i for split in loaded.values() for i in split["id"]) == kept
    assert len(found) == 80  # every prompt is either in the dataset or a reject with a reason
    refusals = [pid for pid, reason in found.items() if reason == "meta_text"]
    assert refusals
    card = (run_dir / "dataset" / "README.md").read_text(encoding="utf-8")
    assert f"| meta_text | {len(refusals)} |" in card
    assert f"**{len(kept)}**" in card

    # The refused prompts can be asked again; the old answers are kept aside, not deleted.
    llm_server.config.responder = default_responder
    again = run_cli(
        "factory",
        "generate",
        "--lang",
        "hindi",
        "--n",
        "80",
        "--base-url",
        llm_server.base_url,
        "--api-key",
        TEST_KEY,
        "--retry-rejected",
    )
    assert again.returncode == 0, again.stderr
    after = verdicts(run_dir)
    assert all(after[pid] != "meta_text" for pid in refusals)
    store = RunStore.open(run_dir / "store.sqlite")
    superseded = [pid for pid, reason, _ in store.superseded() if reason == "meta_text"]
    store.close()
    assert sorted(superseded) == sorted(refusals)
