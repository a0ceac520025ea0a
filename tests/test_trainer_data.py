"""Datasets in every accepted form become token shards; bad data gives one clear line."""

import json
import random

import datasets
import numpy as np
import pytest

from factory.errors import KahaniError
from tests.conftest import assert_one_line_error, run_cli
from tests.trainer_helpers import CORPUS, corpus_rows
from trainer.data import read_rows, read_shard, token_dtype
from trainer.tokenizer import load_tokenizer

pytest_plugins = ["tests.trainer_helpers"]  # fixtures: tok_dir, hindi_data, pretrained_run


def test_shards_hold_bos_text_eos_documents(hindi_data, tok_dir):
    meta = json.loads((hindi_data / "meta.json").read_text())
    tok = load_tokenizer(tok_dir)
    assert meta["dtype"] == "uint16"
    assert meta["splits"]["validation"]["documents"] >= 1
    tokens = np.concatenate([read_shard(hindi_data / s) for s in meta["splits"]["train"]["shards"]])
    assert len(tokens) == meta["splits"]["train"]["tokens"]
    assert tokens[0] == tok.bos_id and tokens[-1] == tok.eos_id
    first_doc = tokens[1 : list(tokens).index(tok.eos_id)].tolist()
    train_texts = {r["text"] for r in read_rows(CORPUS / "hindi.jsonl")["train"]}
    assert tok.decode(first_doc) in train_texts


def test_hash_split_is_stable_and_ignores_row_order():
    rows = corpus_rows("marathi")
    first = read_rows(CORPUS / "marathi.jsonl")
    shuffled = list(rows)
    random.Random(0).shuffle(shuffled)
    val_ids = {r["id"] for r in first["validation"]}
    assert val_ids and len(first["train"]) + len(val_ids) == len(rows)
    assert val_ids == {r["id"] for r in read_rows(CORPUS / "marathi.jsonl")["validation"]}


def test_saved_dataset_dict_keeps_its_splits_and_txt_splits_on_blank_lines(tmp_path):
    rows = corpus_rows("bangla")
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(rows[:-3]),
            "validation": datasets.Dataset.from_list(rows[-3:]),
            "test": datasets.Dataset.from_list(rows[:1]),
        }
    ).save_to_disk(str(tmp_path / "ds"))
    got = read_rows(tmp_path / "ds")
    assert [r["id"] for r in got["validation"]] == [r["id"] for r in rows[-3:]]
    (tmp_path / "a.txt").write_text("one story\nstill one\n\nsecond story\n", encoding="utf-8")
    split = read_rows(tmp_path / "a.txt", val_fraction=0.0)
    texts = [r["text"] for r in split["train"] + split["validation"]]
    assert sorted(texts) == ["one story\nstill one", "second story"]


def test_token_dtype_widens_for_large_vocabularies_and_refuses_too_small_ones():
    assert token_dtype(65_536) == np.uint16
    assert token_dtype(100_000) == np.uint32
    with pytest.raises(KahaniError, match="does not fit uint16"):
        token_dtype(100_000, "uint16")


def test_prepare_rejects_data_without_a_text_column(tmp_path, tok_dir):
    path = tmp_path / "chat.jsonl"
    path.write_text(json.dumps({"id": "1", "messages": []}) + "\n")
    result = run_cli(
        "trainer", "prepare", str(path), "--tokenizer", str(tok_dir), "--out", str(tmp_path / "d")
    )
    assert_one_line_error(result, "no 'text' column")


def test_prepare_rejects_an_empty_dataset(tmp_path, tok_dir):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    result = run_cli(
        "trainer", "prepare", str(path), "--tokenizer", str(tok_dir), "--out", str(tmp_path / "d")
    )
    assert_one_line_error(result, "has no rows")


def test_prepare_rejects_a_vocabulary_larger_than_the_token_dtype(tmp_path, tok_dir):
    result = run_cli(
        "trainer",
        "prepare",
        str(CORPUS / "hindi.jsonl"),
        "--tokenizer",
        str(tok_dir),
        "--out",
        str(tmp_path / "d"),
        "--dtype",
        "uint8",
    )
    assert_one_line_error(result, "does not fit uint8")


def test_truncated_shard_is_refused(tmp_path, hindi_data):
    shard = hindi_data / "train_000.bin"
    copy = tmp_path / "train_000.bin"
    copy.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(KahaniError, match="truncated"):
        read_shard(copy)
