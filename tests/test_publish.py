"""`--push-to-hub`: models (`trainer export`) and datasets (`factory export`) uploaded through the
real `huggingface_hub` client to the Hub stand-in (`tests/hub_server.py`) over HTTP."""

import json
import os
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_cli
from hub_server import FakeHub
from trainer_helpers import CORPUS

from judge.results import EvaluationSummary, write_summary

pytest_plugins = ["trainer_helpers"]
TOKEN = "hf_kahani_test_0123456789SECRET"


@pytest.fixture
def hub():
    with FakeHub(token=TOKEN) as server:
        yield server


def hub_env(tmp_path: Path, hub: FakeHub | None, token: str | None = TOKEN) -> dict[str, str]:
    """The environment of a user logged in to `hub` (or to nothing at all)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env["HF_HOME"] = str(tmp_path / "hf-home")  # no saved login but this test's
    env["HF_HUB_DISABLE_XET"] = "1"  # the stand-in speaks Git LFS, not Xet
    if hub is not None:
        env["HF_ENDPOINT"] = hub.url
    if token:
        env["HF_TOKEN"] = token
    return env


def last_checkpoint(run: Path) -> Path:
    return sorted((run / "checkpoints").iterdir())[-1]


def test_a_trained_model_is_published_private_with_its_card(pretrained_run, tmp_path, hub):
    out = tmp_path / "exports" / "tiny-40"
    step = last_checkpoint(pretrained_run)
    done = run_cli(
        "trainer",
        "export",
        str(step),
        "--out",
        str(out),
        "--push-to-hub",
        "kahani-tester/tiny-hindi",
        env=hub_env(tmp_path, hub),
    )
    assert done.returncode == 0, done.stderr
    assert f"pushed   {hub.url}/kahani-tester/tiny-hindi (as kahani-tester)" in done.stdout

    repo = hub.repo("model", "kahani-tester/tiny-hindi")
    assert repo is not None and repo.private
    for name in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json"):
        assert repo.files[name] == (out / name).read_bytes(), name
    assert any(r.startswith("PUT /lfs/") for r in hub.requests)  # weights went through LFS
    card = repo.files["README.md"].decode()
    assert card == (out / "README.md").read_text(encoding="utf-8")

    from trainer.card import parameters

    assert f"| parameters | {parameters(out / 'model.safetensors'):,} |" in card
    assert "| tokenizer | byte-fallback BPE" in card
    assert "| training data | `hindi.jsonl`: " in card  # what the shards were made from
    assert "| training | 40 steps, 20,480 tokens seen (8 sequences x 1 accumulation x 64" in card
    rows = [json.loads(line) for line in (pretrained_run / "metrics.jsonl").open()]
    bpb = [r["val_bpb"] for r in rows if "val_bpb" in r][-1]
    assert f"| validation | {bpb:.4f} bits per byte" in card
    assert "Not evaluated yet" in card

    # The token went to the Hub in a header and nowhere on disk.
    for path in [*out.rglob("*"), *(tmp_path / "hf-home").rglob("*")]:
        assert not path.is_file() or TOKEN.encode() not in path.read_bytes(), path


def test_pushing_the_same_model_again_uploads_nothing_new(pretrained_run, tmp_path, hub):
    command = ["export", str(last_checkpoint(pretrained_run)), "--out", str(tmp_path / "m")]
    command += ["--push-to-hub", "kahani-tester/again"]
    assert run_cli("trainer", *command, env=hub_env(tmp_path, hub)).returncode == 0
    uploads = [r for r in hub.requests if r.startswith("PUT /lfs/")]
    again = run_cli("trainer", *command, env=hub_env(tmp_path, hub))
    assert again.returncode == 0, again.stderr
    assert [r for r in hub.requests if r.startswith("PUT /lfs/")] == uploads
    assert hub.repo("model", "kahani-tester/again").commits == ["Upload model with kahani"]


def test_the_card_carries_the_judge_scores_of_an_evaluation(pretrained_run, tmp_path, hub):
    from judge.results import Interval, JudgeSummary, MetricSummary, SamplingSettings

    summary = EvaluationSummary(
        model="tiny-40",
        language="hindi",
        prompts=20,
        samples_per_prompt=3,
        completions=60,
        settings=SamplingSettings(max_tokens=60, temperature=0.8, top_k=50, seed=0),
        metrics={
            "distinct_1": MetricSummary(
                mean=0.553, low=0.503, high=0.601, n=58, higher_is_better=True, signature="d1"
            ),
            "embedding": MetricSummary(higher_is_better=True, signature="e", skipped="offline"),
        },
        judge=JudgeSummary(
            provider="openai",
            model="gpt-4o",
            parse_failure_rate=0.0,
            dimensions={"overall": Interval(mean=4.517, low=4.25, high=4.783, n=60)},
            controls={},
        ),
    )
    evaluation = tmp_path / "runs" / "eval-tiny-40"  # where `judge score` puts it
    evaluation.mkdir(parents=True)
    write_summary(evaluation, summary)
    done = run_cli(
        "trainer",
        "export",
        str(last_checkpoint(pretrained_run)),
        "--out",
        "exports/tiny-40",
        "--push-to-hub",
        "kahani-tester/tiny-40",
        env=hub_env(tmp_path, hub),
    )
    assert done.returncode == 0, done.stderr
    card = hub.repo("model", "kahani-tester/tiny-40").files["README.md"].decode()
    assert "language:\n- hi\n" in card
    assert "on 20 hindi prompts, 60 completions, judged by openai:gpt-4o" in card
    assert "| judge overall | 4.517 | [4.250, 4.783] |" in card
    assert "| distinct_1 | 0.553 | [0.503, 0.601] |" in card
    assert "embedding" not in card  # a skipped metric has no number to show


def test_a_dataset_is_published_private_with_its_card_and_files(tmp_path, hub):
    env = hub_env(tmp_path, hub)
    corpus = str(CORPUS / "hindi.jsonl")
    assert (
        run_cli("factory", "clean", corpus, "--lang", "hindi", "--out", "runs/hi").returncode == 0
    )
    done = run_cli("factory", "export", "runs/hi", "--push-to-hub", "kahani-tester/hi", env=env)
    assert done.returncode == 0, done.stderr
    assert f"pushed   {hub.url}/datasets/kahani-tester/hi" in done.stdout
    repo = hub.repo("dataset", "kahani-tester/hi")
    assert repo is not None and repo.private
    dataset = Path("runs/hi/dataset")
    assert repo.files["README.md"] == (dataset / "README.md").read_bytes()
    parquet = sorted(p.relative_to(dataset).as_posix() for p in dataset.glob("data/*.parquet"))
    assert parquet and all(repo.files[p] == (dataset / p).read_bytes() for p in parquet)
    assert "jsonl/train.jsonl" in repo.files
    assert not [p for p in repo.files if p.endswith(".arrow") or p == "dataset_dict.json"]


def test_publishing_without_a_token_is_one_line(pretrained_run, tmp_path):
    result = run_cli(
        "trainer",
        "export",
        str(last_checkpoint(pretrained_run)),
        "--out",
        str(tmp_path / "m"),
        "--push-to-hub",
        "kahani-tester/m",
        env=hub_env(tmp_path, None, token=None),
    )
    assert_one_line_error(result, "--push-to-hub needs a Hugging Face token", "hf auth login")
    assert not (tmp_path / "m" / "README.md").exists()


def test_a_refused_token_or_repository_is_one_line(tmp_path, hub):
    env = hub_env(tmp_path, hub, token="hf_wrong")
    corpus = str(CORPUS / "hindi.jsonl")
    assert (
        run_cli("factory", "clean", corpus, "--lang", "hindi", "--out", "runs/hi").returncode == 0
    )
    wrong = run_cli("factory", "export", "runs/hi", "--push-to-hub", "kahani-tester/hi", env=env)
    assert_one_line_error(wrong, "refused the token (HTTP 401)")
    theirs = run_cli(
        "factory",
        "export",
        "runs/hi",
        "--push-to-hub",
        "someone-else/hi",
        env=hub_env(tmp_path, hub),
    )
    assert_one_line_error(theirs, "may not write to someone-else/hi (HTTP 403)")
    bad = run_cli("factory", "export", "runs/hi", "--push-to-hub", "no slash!", env=env)
    assert_one_line_error(bad, "expects a repository id like user/name")
    assert hub.repos == {}
