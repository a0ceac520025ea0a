"""`judge play`: the playground page in Debian's Chromium and its HTTP API, against tiny real
models built here (`tiny_models.py`) and the OpenAI stand-in, served by the real command."""

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import BIN, assert_one_line_error, run_cli
from openai_server import FakeOpenAI, ServerConfig, prompt_key
from tiny_models import classifier, random_model, scripted_model

expect = pytest.importorskip("playwright.sync_api").expect

# o, k, then क as three byte tokens, then a lone 0xF0 (never valid UTF-8), then "!".
SCRIPT = ["o", "k", "<0xE0>", "<0xA4>", "<0x95>", "<0xF0>", "!"]
SCRIPTED_TEXT = "okक\ufffd!"
STORY, CLASSIFIER, SCRIPTED, API = range(4)  # the columns, in the order the models are given


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "story": random_model(root / "story"),
        "labels": classifier(root / "labels"),
        "scripted": scripted_model(root / "scripted", SCRIPT),
    }


@pytest.fixture(scope="module")
def api() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(ServerConfig()) as server:
        yield server


def start_playground(*args: str) -> tuple[subprocess.Popen, str]:
    """`judge play ARGS --port 0`, started as a user starts it; its URL once it serves."""
    process = subprocess.Popen(
        [str(BIN / "judge"), "play", *args, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if found := re.search(r"playground\s+(http://\S+)", line):
            return process, found.group(1)
    process.wait(timeout=10)
    raise AssertionError(f"judge play did not start: {process.stderr.read()}")  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def playground(models: dict[str, Path], api: FakeOpenAI) -> Iterator[str]:
    process, url = start_playground(
        str(models["story"]),
        str(models["labels"]),
        str(models["scripted"]),
        "openai:gpt-4o-mini",
        "--base-url",
        api.base_url,
        "--max-tokens",
        "300",
    )
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def page(browser, playground: str) -> Iterator:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(playground)
    page.wait_for_selector("body[data-ready=true]")
    yield page
    assert errors == []
    page.close()


def column(page, index: int):
    return page.locator("section.column").nth(index)


def send(page, text: str) -> None:
    page.fill("#prompt", text)
    page.click("#send")


def wait_done(page, index: int) -> None:
    expect(column(page, index)).to_have_attribute("data-state", "done")


def answer_of(page, index: int) -> str:
    return column(page, index).locator(".answer, .turn.assistant").last.inner_text()


def generate(url: str, **body: object) -> list[dict]:
    """The events of one /api/generate answer, read as they stream."""
    request = {
        "model": STORY,
        "mode": "story",
        "messages": [{"role": "user", "content": "ek din"}],
        "settings": {"temperature": 0.8, "top_k": 50, "max_tokens": 20, "seed": 1},
    } | body
    with httpx.stream("POST", f"{url}api/generate", json=request, timeout=60) as response:
        assert response.status_code == 200, response.read()
        return [json.loads(line) for line in response.iter_lines() if line]


def test_typed_prompt_streams_into_every_model_side_by_side(page, api, artifacts):
    send(page, "ek din")
    for index in (STORY, SCRIPTED, API):
        wait_done(page, index)
    wait_done(page, CLASSIFIER)

    story = column(page, STORY)
    assert story.get_attribute("data-model") == "story"
    assert story.locator(".prompt").inner_text() == "ek din"
    # 300 tokens arrived over several network reads, each shown as it came.
    assert int(story.get_attribute("data-reads")) > 1
    assert len(answer_of(page, STORY)) >= 250
    assert re.match(r"300 tokens · [\d.]+ tok/s · length", story.locator(".status").inner_text())

    labels = column(page, CLASSIFIER).locator("table.labels tr")
    assert labels.count() == 3
    names = labels.locator("td.label").all_inner_texts()
    assert sorted(names) == ["chat", "other", "story"]
    probabilities = [float(p) for p in labels.locator("td.p").all_inner_texts()]
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1, abs=0.01)

    assert answer_of(page, SCRIPTED) == SCRIPTED_TEXT
    assert "1 × �" in column(page, SCRIPTED).locator(".status").inner_text()

    # The API model chats: the stand-in echoes the last user message, streamed word by word.
    assert answer_of(page, API) == "ek din"
    assert api.stats.by_route["POST /v1/chat/completions"] >= 1
    page.screenshot(path=artifacts / "playground.png", full_page=True)


def test_changing_a_control_changes_the_next_answer(page):
    page.fill("#max_tokens", "5")
    page.fill("#seed", "7")
    send(page, "ek din")
    wait_done(page, STORY)
    first = answer_of(page, STORY)
    assert re.match(r"5 tokens · .* · length", column(page, STORY).locator(".status").inner_text())

    send(page, "ek din")  # the same seed: the same answer
    wait_done(page, STORY)
    assert answer_of(page, STORY) == first

    page.fill("#seed", "8")
    page.fill("#max_tokens", "40")
    send(page, "ek din")
    expect(column(page, STORY).locator(".status")).to_have_text(re.compile(r"^40 tokens"))
    assert answer_of(page, STORY)[:5] != first


def test_switching_a_column_to_another_model_and_chatting(page, api):
    second = column(page, CLASSIFIER)
    second.locator("select.model").select_option(str(API))
    assert second.get_attribute("data-model") == "gpt-4o-mini"
    assert second.locator("select.mode").input_value() == "chat"

    send(page, "namaste")
    wait_done(page, CLASSIFIER)
    send(page, "kya haal hai")
    expect(second.locator(".turn")).to_have_count(4)
    wait_done(page, CLASSIFIER)
    turns = second.locator(".turn").all_inner_texts()
    assert [t.split("\n")[-1] for t in turns] == [
        "namaste",
        "namaste",
        "kya haal hai",
        "kya haal hai",
    ]
    # The second request carried the whole conversation, from this column and the API's own.
    history = [
        {"role": "user", "content": "namaste"},
        {"role": "assistant", "content": "namaste"},
        {"role": "user", "content": "kya haal hai"},
    ]
    assert api.stats.served_prompts[prompt_key(history)] == 2

    # A local model switched to chat mode answers through its chat template.
    first = column(page, STORY)
    first.locator("select.mode").select_option("chat")
    send(page, "hello")
    wait_done(page, STORY)
    assert first.locator(".turn.user").inner_text().endswith("hello")
    assert answer_of(page, STORY)


def test_model_output_is_shown_as_text_never_as_html(page):
    attack = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    send(page, attack)
    wait_done(page, API)
    assert answer_of(page, API) == attack  # the stand-in echoes it back
    assert page.locator("img").count() == 0
    assert page.evaluate("typeof window.pwned") == "undefined"


def test_invalid_utf8_mid_stream_is_replaced_and_the_server_keeps_serving(playground):
    events = generate(playground, model=SCRIPTED)
    pieces = [e["text"] for e in events if e["event"] == "piece"]
    # क arrives whole once its third byte is there, never as half a character.
    assert pieces == ["o", "k", "क", "\ufffd!"]
    assert events[-1] | {"seconds": 0} == {
        "event": "done",
        "finish_reason": "stop",
        "tokens": len(SCRIPT),
        "seconds": 0,
        "replaced": 1,
    }
    again = generate(playground, model=STORY)
    assert again[-1]["event"] == "done" and again[-1]["tokens"] == 20


def test_bad_requests_get_one_line_answers_and_foreign_pages_are_refused(playground):
    bad = {
        "model": STORY,
        "mode": "story",
        "messages": [{"role": "user", "content": "x"}],
        "settings": {"temperature": 5, "top_k": None, "max_tokens": 5, "seed": None},
    }
    answer = httpx.post(f"{playground}api/generate", json=bad)
    assert answer.status_code == 400
    assert answer.json()["error"] == (
        "temperature: input should be less than or equal to 2 (got 5)"
    )
    wrong_kind = httpx.post(f"{playground}api/classify", json={"model": STORY, "text": "x"})
    assert wrong_kind.json() == {"error": f"model {STORY} is not a classifier"}
    # A page from elsewhere cannot drive the models, nor can a rebinding DNS name.
    foreign = httpx.post(
        f"{playground}api/generate", json=bad, headers={"origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    rebound = httpx.get(f"{playground}api/models", headers={"host": "evil.example"})
    assert rebound.status_code == 421
    form = httpx.post(f"{playground}api/generate", content=json.dumps(bad))
    assert form.status_code == 415
    # The page loads nothing from elsewhere.
    index = httpx.get(playground)
    policy = index.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert not re.search(r"""(src|href)=["']?https?://""", index.text)


def test_a_model_folder_that_does_not_exist_is_one_line():
    result = run_cli("judge", "play", "runs/nope", "--port", "0")
    assert_one_line_error(result, "'runs/nope' is neither a trainer run")


def test_a_port_in_use_is_one_line(models):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run_cli("judge", "play", str(models["scripted"]), "--port", port)
    assert_one_line_error(result, f"port {port} on 127.0.0.1 is in use", "--port 0")


def test_an_api_model_without_key_or_server_is_one_line():
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    result = run_cli("judge", "play", "openai:gpt-4o-mini", "--port", "0", env=env)
    assert_one_line_error(result, "openai:gpt-4o-mini needs --api-key")


def test_the_judge_cli_imports_no_model_or_server_library():
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import judge.cli"],
        capture_output=True,
        text=True,
    )
    heavy = [
        m for m in ("torch", "transformers", "starlette", "uvicorn") if f" {m}\n" in done.stderr
    ]
    assert heavy == []
