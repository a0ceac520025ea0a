"""Shared pieces of the trainer tests: the fixture corpus, a tokenizer, prepared data, a run.

Test modules import the constants and name this module in `pytest_plugins` for the fixtures;
PYTEST_DONT_REWRITE keeps pytest from warning that it was imported before that.
"""

import json
import os
from pathlib import Path

import pytest
import torch

from trainer.data import prepare
from trainer.tokenizer import load_tokenizer, save_tokenizer, train_bpe
from trainer.train import pretrain

CORPUS = Path(__file__).resolve().parent / "fixtures" / "corpus"
# The models here are tiny: one thread per process beats two threads contending for the
# cores (OpenMP spin-waits make that 10x slower on a busy 2-core machine). Subprocesses inherit it.
torch.set_num_threads(1)
os.environ["OMP_NUM_THREADS"] = "1"

LANGUAGES = ("hindi", "marathi", "bangla", "english", "hinglish")

# Small and quick: each test run takes a second or two on a CPU core.
SMALL_TRAIN = dict(
    steps=40,
    batch_size=8,
    lr=3e-3,
    warmup_steps=5,
    eval_every=10,
    eval_examples=8,
    checkpoint_every=10,
    log_every=10,
)


def corpus_rows(language: str) -> list[dict]:
    path = CORPUS / f"{language}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def corpus_texts(*languages: str) -> list[str]:
    return [row["text"] for lang in languages for row in corpus_rows(lang)]


@pytest.fixture(scope="session")
def tok_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2k BPE over every fixture language (chat tokens included)."""
    out = tmp_path_factory.mktemp("tok")
    save_tokenizer(train_bpe(corpus_texts(*LANGUAGES), 2000), out)
    return out


@pytest.fixture(scope="session")
def hindi_data(tmp_path_factory: pytest.TempPathFactory, tok_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("data")
    prepare(CORPUS / "hindi.jsonl", load_tokenizer(tok_dir), out)
    return out


@pytest.fixture(scope="session")
def pretrained_run(tmp_path_factory: pytest.TempPathFactory, hindi_data: Path) -> Path:
    """A finished tiny run (40 steps), with hf/ exported."""
    run = tmp_path_factory.mktemp("runs") / "tiny"
    assert pretrain(hindi_data, run, {"preset": "tiny", "block_size": 64}, dict(SMALL_TRAIN))
    return run
