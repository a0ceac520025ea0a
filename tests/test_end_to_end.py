"""The whole chain, through the command lines as a user runs them: generate Hindi stories
and Hinglish conversations from the local OpenAI-compatible server, clean them into
datasets, train a tokenizer and a tiny model, fine-tune it on the conversations, judge both
with the server as judge, and open the reports in Chromium. Each stage reads only the files
the previous one wrote, so a renamed column or a missing field breaks this test."""

import json
import subprocess
from pathlib import Path

from conftest import BIN, TEST_KEY, Page
from openai_server import default_responder

from judge.rubric import DIMENSIONS

JUDGE_ASK = "Give each of these an integer score"


def served(body: dict) -> str:
    """Stories and conversations for factory, replies for the chat model, and judgements."""
    user = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    if JUDGE_ASK in user:
        score = 1 + len(user) % 10
        dims = {d: score for kind in DIMENSIONS.values() for d in kind}
        return json.dumps(dims | {"reasoning": "consistent with the rubric"})
    return default_responder(body)


def step(cwd: Path, program: str, *args: str) -> str:
    done = subprocess.run(
        [str(BIN / program), *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{program} {args[0]}: {done.stderr[-2000:]}"
    return done.stdout


def test_generate_clean_train_finetune_judge_report(llm_server, tmp_path, browser, artifacts):
    llm_server.config.responder = served
    server = ["--base-url", llm_server.base_url, "--api-key", TEST_KEY]
    step(
        tmp_path,
        "factory",
        "generate",
        "--lang",
        "hindi",
        "--n",
        "80",
        "--min-words",
        "20",
        *server,
    )
    step(tmp_path, "factory", "generate", "--lang", "hinglish", "--n", "40", *server)
    stories = tmp_path / "runs" / "hindi-gpt-4o-mini-seed0" / "dataset"
    chats = tmp_path / "runs" / "hinglish-gpt-4o-mini-seed0" / "dataset"
    assert (stories / "dataset_dict.json").is_file() and (chats / "openai").is_dir()

    step(tmp_path, "trainer", "tokenizer", str(stories), "--vocab", "1500", "--out", "tok")
    step(tmp_path, "trainer", "prepare", str(stories), "--tokenizer", "tok", "--out", "data")
    step(
        tmp_path,
        "trainer",
        "train",
        "--data",
        "data",
        "--preset",
        "tiny",
        "--block-size",
        "128",
        "--steps",
        "30",
        "--out",
        "runs/hi-tiny",
    )
    step(
        tmp_path,
        "trainer",
        "sft",
        "--init",
        "runs/hi-tiny",
        "--data",
        str(chats),
        "--out",
        "runs/chat",
        "--steps",
        "10",
    )
    for model in ("runs/hi-tiny", "runs/chat"):
        assert (tmp_path / model / "hf" / "model.safetensors").is_file()
    # 5% of 80 stories is a validation split shorter than the context; it is still measured.
    metrics = (tmp_path / "runs" / "hi-tiny" / "metrics.jsonl").read_text().splitlines()
    assert any("val_bpb" in json.loads(line) for line in metrics)

    judge = [
        "--judge",
        "openai:gpt-4o",
        "--judge-base-url",
        llm_server.base_url,
        "--judge-api-key",
        TEST_KEY,
        "--n",
        "5",
        "--samples",
        "2",
        "--max-tokens",
        "40",
        "--controls",
        "2",
    ]
    step(tmp_path, "judge", "score", "runs/hi-tiny", "--lang", "hindi", "--out", "eval-hi", *judge)
    step(
        tmp_path, "judge", "score", "runs/chat", "--lang", "hinglish", "--out", "eval-chat", *judge
    )
    for folder, kind in (("eval-hi", "story"), ("eval-chat", "conversation")):
        summary = json.loads((tmp_path / folder / "summary.json").read_text(encoding="utf-8"))
        assert summary["completions"] == 10
        assert summary["judge"]["parse_failure_rate"] == 0
        assert set(summary["judge"]["dimensions"]) == set(DIMENSIONS[kind])
    chat = json.loads((tmp_path / "eval-chat" / "summary.json").read_text(encoding="utf-8"))
    assert "cmi" in chat["metrics"]

    step(tmp_path, "factory", "report", "runs/hindi-gpt-4o-mini-seed0")
    reports = [
        tmp_path / "eval-hi" / "report.html",
        tmp_path / "eval-chat" / "report.html",
        *(tmp_path / "runs" / "hindi-gpt-4o-mini-seed0").glob("*.html"),
    ]
    assert len(reports) == 3
    for path in reports:
        page = Page(browser, path)
        page.check_common(artifacts / f"e2e-{path.parent.name}.png")
