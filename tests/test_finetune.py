"""`factory finetune`: OpenAI fine-tuning jobs from kahani datasets, run through the command
line against the OpenAI stand-in's /v1/files and /v1/fine_tuning/jobs."""

import json
import os
import time
from pathlib import Path

import openai
import pytest
from conftest import TEST_KEY, assert_error_after_work, assert_one_line_error, run_cli
from openai_server import FakeOpenAI, FineTuningConfig, JobOutcome, ServerConfig

from factory.errors import KahaniError
from factory.finetune import auto_epochs, check_file, estimate, sha256
from factory.paths import PRICES_FILE
from factory.pricing import count_chat_tokens, load_prices
from factory.prompts import Message

MODEL = "gpt-4o-mini-2024-07-18"


def conversation(i: int) -> dict:
    return {
        "messages": [
            {"role": "system", "content": "Tum ek dost ho jo Hinglish mein baat karta hai."},
            {"role": "user", "content": f"Arre yaar, aaj plan {i} kya hai?"},
            {"role": "assistant", "content": f"Chal chai peete hain, phir plan {i} dekhte hain."},
            {"role": "user", "content": "Done, shaam ko milte hain."},
            {"role": "assistant", "content": "Pakka, main wait karunga."},
        ]
    }


def write_dataset(folder: Path, examples: list[dict], validation: list[dict] | None = None) -> Path:
    """A dataset folder laid out as `factory export` writes one: openai/<split>.jsonl."""
    (folder / "openai").mkdir(parents=True)
    for split, rows in (("train", examples), ("validation", validation)):
        if rows is not None:
            lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
            (folder / "openai" / f"{split}.jsonl").write_text(lines, encoding="utf-8")
    return folder


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "dataset", [conversation(i) for i in range(12)])


@pytest.fixture
def server():
    with FakeOpenAI(ServerConfig(api_key=TEST_KEY)) as fake:
        fake.config.fine_tuning.seconds = 0.2
        yield fake


def finetune(*args: str, server: FakeOpenAI | None = None, key: bool = False):
    """`factory finetune ARGS`, with the stand-in's URL and key (`key`: the key alone, the
    URL coming from the dataset's record)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    where = ["--base-url", server.base_url] if server else []
    keys = ["--api-key", TEST_KEY] if server or key else []
    return run_cli("factory", "finetune", *args, *where, *keys, env=env)


def create(dataset: Path, server: FakeOpenAI, *extra: str):
    return finetune(
        "create", str(dataset), "--model", MODEL, "--suffix", "hinglish", *extra, server=server
    )


def test_a_dataset_is_checked_priced_uploaded_and_fine_tuned_once(dataset, server):
    done = create(dataset, server, "--wait", "--poll-seconds", "0.05")
    assert done.returncode == 0, done.stderr
    tokens = sum(
        count_chat_tokens([Message(**m) for m in conversation(i)["messages"]]) for i in range(12)
    )
    price = load_prices(PRICES_FILE).get(MODEL)
    assert price is not None and price.training == 3.00
    assert f"12 examples, {tokens:,} tokens" in done.stdout
    assert "epochs   9 (auto" in done.stdout  # 100 examples' worth: ceil(100 / 12)
    cost = tokens * 9 * 3.00 / 1e6
    assert f"cost     ${cost:,.2f} estimated: {tokens * 9:,} training tokens" in done.stdout
    model = f"ft:{MODEL}:kahani-test:hinglish:"
    assert f"model    {model}" in done.stdout
    assert f"evaluate judge score openai:{model}" in done.stdout
    assert "Step " in done.stdout and "training loss" in done.stdout  # events, as they came
    stats = server.stats
    assert (stats.files_uploaded, stats.fine_tuning_jobs_created) == (1, 1)

    record = json.loads((dataset / "finetune" / f"{MODEL}-hinglish.json").read_text())
    assert record["job_id"].startswith("ftjob-") and record["status"] == "succeeded"
    assert record["training"]["file_id"].startswith("file-")
    assert TEST_KEY not in json.dumps(record)

    again = create(dataset, server)  # the same command: the job is reported, not made again
    assert again.returncode == 0, again.stderr
    assert f"{record['job_id']} exists (succeeded)" in again.stdout
    assert (server.stats.files_uploaded, server.stats.fine_tuning_jobs_created) == (1, 1)

    status = finetune("status", str(dataset), key=True)  # the record knows the server
    assert status.returncode == 0, status.stderr
    assert "status   succeeded\ntrained  " in status.stdout
    events = finetune("events", str(dataset), "--limit", "2", key=True)
    assert events.stdout.splitlines()[-1].endswith("The job has successfully completed")
    listed = finetune("list", server=server)
    assert listed.stdout.startswith(f"{record['job_id']}  succeeded")


def test_hyperparameters_and_validation_file_reach_the_job(tmp_path, server):
    data = write_dataset(tmp_path / "d", [conversation(i) for i in range(10)], [conversation(99)])
    done = create(data, server, "--epochs", "2", "--lr-multiplier", "0.5", "--validation")
    assert done.returncode == 0, done.stderr
    assert "validation.jsonl: 1 examples" in done.stdout
    assert "epochs   2\n" in done.stdout
    client = openai.OpenAI(base_url=server.base_url, api_key=TEST_KEY)
    job = client.fine_tuning.jobs.list().data[0]
    assert job.hyperparameters.n_epochs == 2
    assert job.hyperparameters.learning_rate_multiplier == 0.5
    assert job.validation_file is not None
    assert client.files.retrieve(job.validation_file).purpose == "fine-tune"

    changed = create(data, server, "--epochs", "3", "--lr-multiplier", "0.5", "--validation")
    assert_one_line_error(changed, "holds a job asked with hyperparameters", "--name NEW")
    assert server.stats.fine_tuning_jobs_created == 1


def test_a_network_failure_after_the_upload_reuses_the_uploaded_file(dataset, server):
    server.config.fine_tuning.create_error = lambda call: 500 if call == 0 else None
    failed = create(dataset, server)
    assert_one_line_error(failed, "creating the fine-tuning job", "run the same command again")
    record = json.loads((dataset / "finetune" / f"{MODEL}-hinglish.json").read_text())
    assert record["training"]["file_id"] and record["job_id"] is None

    done = create(dataset, server)
    assert done.returncode == 0, done.stderr
    assert f"reusing  {record['training']['file_id']}" in done.stdout
    assert (server.stats.files_uploaded, server.stats.fine_tuning_jobs_created) == (1, 1)


def test_a_job_whose_creation_answer_was_lost_is_found_not_created_twice(dataset, server):
    server.config.fine_tuning.create_error = lambda call: "lost" if call == 0 else None
    failed = create(dataset, server)
    assert_one_line_error(failed, "creating the fine-tuning job")
    assert server.stats.fine_tuning_jobs_created == 1  # it exists, unbeknown to kahani

    done = create(dataset, server)
    assert done.returncode == 0, done.stderr
    assert "created by an earlier run" in done.stdout
    assert (server.stats.files_uploaded, server.stats.fine_tuning_jobs_created) == (1, 1)


def test_an_upload_whose_answer_was_lost_is_not_uploaded_again(dataset, server):
    # The first run uploaded the file but died before recording its id.
    client = openai.OpenAI(base_url=server.base_url, api_key=TEST_KEY)
    train = dataset / "openai" / "train.jsonl"
    name = f"kahani-{sha256(train)[:16]}-train.jsonl"
    uploaded = client.files.create(file=(name, train.read_bytes()), purpose="fine-tune")
    done = create(dataset, server)
    assert done.returncode == 0, done.stderr
    assert f"reusing  {uploaded.id}" in done.stdout
    assert server.stats.files_uploaded == 1


BAD_EXAMPLES = {
    "system_only": ({"messages": [{"role": "system", "content": "Be nice."}]}, "only a system"),
    "no_answer": ({"messages": [{"role": "user", "content": "hi"}]}, "no assistant message"),
    "answer_first": (
        {"messages": [{"role": "assistant", "content": "hi"}, {"role": "user", "content": "x"}]},
        "must start (after any system message) with a user message",
    ),
    "late_system": (
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "system", "content": "x"},
                {"role": "assistant", "content": "yo"},
            ]
        },
        "system message after the first",
    ),
    "unknown_role": (
        {"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]},
        "role 'robot'",
    ),
    "unknown_key": (
        {
            "messages": [
                {"role": "user", "content": "x", "mood": "happy"},
                {"role": "assistant", "content": "y"},
            ]
        },
        "unknown key 'mood'",
    ),
    "empty_answer": (
        {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": " "}]},
        "(assistant) has no text",
    ),
    "over_the_limit": (
        {
            "messages": [
                {"role": "user", "content": "kahani " * 66_000},
                {"role": "assistant", "content": "bas"},
            ]
        },
        "over the model's 65,536 per example",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_EXAMPLES))
def test_a_bad_example_is_named_by_its_line(tmp_path, case):
    bad, fragment = BAD_EXAMPLES[case]
    rows = [conversation(i) for i in range(12)]
    rows[4] = bad
    data = write_dataset(tmp_path / "d", rows)
    with pytest.raises(KahaniError) as refused:
        check_file(data / "openai" / "train.jsonl", 65_536, "o200k_base", 10)
    assert str(refused.value).startswith(f"{data}/openai/train.jsonl line 5: ")
    assert fragment in str(refused.value)


def test_a_system_only_example_is_refused_before_anything_is_sent(tmp_path, server):
    rows = [conversation(i) for i in range(12)]
    rows[4] = BAD_EXAMPLES["system_only"][0]
    data = write_dataset(tmp_path / "d", rows)
    result = create(data, server)
    assert_one_line_error(result, "openai/train.jsonl line 5: has only a system message")
    assert server.stats.requests == 0
    assert not (data / "finetune").exists()


def test_too_few_examples_are_refused(tmp_path, server):
    data = write_dataset(tmp_path / "d", [conversation(i) for i in range(9)])
    assert_one_line_error(create(data, server), "has 9 examples", "at least 10")
    assert server.stats.requests == 0


def test_every_problem_is_counted_in_the_one_line(tmp_path):
    rows = [conversation(i) for i in range(12)]
    rows[2] = rows[7] = {"messages": []}
    data = write_dataset(tmp_path / "d", rows)
    result = run_cli("factory", "finetune", "create", str(data), "--model", MODEL, "--dry-run")
    assert_one_line_error(result, "line 3: ", "(and 1 more problems)")


def test_without_a_key_or_server_nothing_is_sent(dataset):
    result = finetune("create", str(dataset), "--model", MODEL)
    assert_one_line_error(result, "needs OPENAI_API_KEY (or --api-key), or --base-url")
    assert "checked" in result.stdout  # the offline checks ran first
    assert not (dataset / "finetune").exists()


def test_an_unknown_model_and_a_job_that_does_not_exist_are_one_line(dataset, server):
    assert_one_line_error(
        finetune("create", str(dataset), "--model", "gpt-4", server=server),
        "--model gpt-4 is not a model kahani knows how to fine-tune",
    )
    assert_one_line_error(
        finetune("status", "ftjob-nope", server=server),
        "looking up job ftjob-nope",
        "Could not find fine-tuning job ftjob-nope",
    )
    assert_one_line_error(finetune("status", str(dataset), key=True), "has no fine-tuning record")


def test_a_job_that_fails_validation_reports_the_providers_error(dataset, server):
    error = {
        "code": "invalid_training_file",
        "message": "The job failed due to an invalid training file.",
        "param": "training_file",
    }
    server.config.fine_tuning.outcome = lambda n: JobOutcome(error=error)
    result = create(dataset, server, "--wait", "--poll-seconds", "0.05")
    assert_error_after_work(
        result, "failed: invalid_training_file: The job failed due to an invalid training file."
    )
    assert "status   failed" in result.stdout
    status = finetune("status", str(dataset), key=True)
    assert_error_after_work(status, "invalid_training_file")


def test_the_stand_in_fails_a_job_on_a_file_that_breaks_the_rules():
    """The stand-in checks uploaded files as OpenAI does, whoever uploads them."""
    with FakeOpenAI(ServerConfig(fine_tuning=FineTuningConfig(seconds=0.1))) as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="x")
        lines = "".join(json.dumps(conversation(i)) + "\n" for i in range(3))
        file = client.files.create(file=("few.jsonl", lines.encode()), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model=MODEL, training_file=file.id)
        assert job.status == "validating_files"
        for _ in range(100):
            job = client.fine_tuning.jobs.retrieve(job.id)
            if job.status == "failed":
                break
            time.sleep(0.05)
        assert job.status == "failed" and job.error is not None
        assert job.error.code == "invalid_training_file" and job.error.param == "training_file"
        assert "at least 10 examples" in job.error.message
        with pytest.raises(openai.NotFoundError):
            client.fine_tuning.jobs.retrieve("ftjob-nope")
        with pytest.raises(openai.BadRequestError, match="not available for fine-tuning"):
            client.fine_tuning.jobs.create(model="gpt-4", training_file=file.id)


def test_a_running_job_can_be_cancelled(dataset, server):
    server.config.fine_tuning.seconds = 60
    assert create(dataset, server).returncode == 0
    cancelled = finetune("cancel", str(dataset), key=True)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip().endswith(" cancelled")
    assert_error_after_work(finetune("status", str(dataset), key=True), "was cancelled")
    assert_one_line_error(
        finetune("cancel", str(dataset), key=True), "Cannot cancel a job with status"
    )


def test_the_estimate_is_tokens_times_epochs_at_the_training_price(dataset):
    check = check_file(dataset / "openai" / "train.jsonl", 65_536, "o200k_base", 10)
    price = load_prices(PRICES_FILE).get("gpt-4.1-mini-2025-04-14")
    assert price is not None and price.training == 5.00
    assert estimate(check, 4, price).cost == pytest.approx(sum(check.tokens) * 4 * 5.00 / 1e6)
    assert estimate(check, None, price).epochs == auto_epochs(12) == 9
    assert (auto_epochs(100), auto_epochs(10_000), auto_epochs(3)) == (3, 2, 25)
    assert estimate(check, None, load_prices(PRICES_FILE).get("llama")).cost is None
