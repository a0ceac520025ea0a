"""OpenAI fine-tuning jobs from kahani datasets: check, estimate, upload, create, follow.

`factory export` writes conversations as OpenAI fine-tuning files (`openai/<split>.jsonl`).
Before anything leaves the machine, every example is checked against the fine-tuning format
rules (OpenAI's guide and cookbook): a `messages` list of system/user/assistant messages
with text content and no unknown keys, a system message only first, a user message before
the first answer, at least one assistant message, at least 10 examples, and no example over
the model's token limit (counted offline with the model's encoding). The cost is estimated
as the file's tokens times the epochs at the price table's `training` price.

Then the files are uploaded and the job created, each id recorded the moment it exists
(`finetune_record.py`). A second run reads the record: a recorded upload is reused (its
bytes' SHA-256 must match), a recorded job is followed, never created again. A job created
whose answer was lost is found again by the tag kahani puts in its metadata.
"""

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from factory.errors import KahaniError
from factory.finetune_record import Hyperparameters, JobRecord, Upload, save
from factory.pricing import ModelPrice, count_chat_tokens
from factory.prompts import Message

# Tokens one training example may hold (OpenAI's fine-tuning guide, "token limits", as of
# 2025-08). An undated name (gpt-4o-mini) takes its dated snapshot's limit.
EXAMPLE_TOKEN_LIMITS = {
    "gpt-4.1-2025-04-14": 65_536,
    "gpt-4.1-mini-2025-04-14": 65_536,
    "gpt-4.1-nano-2025-04-14": 65_536,
    "gpt-4o-2024-08-06": 65_536,
    "gpt-4o-mini-2024-07-18": 65_536,
    "gpt-3.5-turbo-0125": 16_385,
}
MIN_EXAMPLES = 10  # OpenAI refuses a training file with fewer
MESSAGE_KEYS = {"role", "content", "name", "weight"}
ROLES = ("system", "user", "assistant")
ENDED = ("succeeded", "failed", "cancelled")
Say = Callable[[str], None]


def token_limit(model: str) -> int:
    """The model's tokens per training example; KahaniError for a model kahani does not know."""
    if model in EXAMPLE_TOKEN_LIMITS:
        return EXAMPLE_TOKEN_LIMITS[model]
    for name, limit in EXAMPLE_TOKEN_LIMITS.items():
        if name.startswith(model + "-"):
            return limit
    raise KahaniError(
        f"--model {model} is not a model kahani knows how to fine-tune; choose one of "
        f"{', '.join(EXAMPLE_TOKEN_LIMITS)}"
    )


@dataclass(frozen=True)
class FileCheck:
    """A fine-tuning file that passed every check, and its token count per example."""

    path: Path
    tokens: list[int]

    @property
    def examples(self) -> int:
        return len(self.tokens)


def check_file(path: Path, limit: int, encoding: str, minimum: int) -> FileCheck:
    """Check every example of `path`; KahaniError naming the first problem (and how many)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise KahaniError(f"{path} does not exist") from None
    except UnicodeDecodeError:
        raise KahaniError(f"{path} is not UTF-8 text") from None
    problems: list[str] = []
    tokens: list[int] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        problem, count = _check_example(line, limit, encoding)
        if problem:
            problems.append(f"{path} line {number}: {problem}")
        else:
            tokens.append(count)
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise KahaniError(problems[0] + more)
    if len(tokens) < minimum:
        raise KahaniError(
            f"{path} has {len(tokens)} examples; OpenAI fine-tuning needs at least {minimum}"
        )
    return FileCheck(path, tokens)


def _check_example(line: str, limit: int, encoding: str) -> tuple[str | None, int]:
    """(the problem, or None; the example's tokens) for one line of a fine-tuning file."""
    try:
        example = json.loads(line)
    except json.JSONDecodeError:
        return "not valid JSON", 0
    if not isinstance(example, dict) or not isinstance(example.get("messages"), list):
        return 'not an object with a "messages" list', 0
    extra = set(example) - {"messages"}
    if extra:
        return f"unknown key {sorted(extra)[0]!r} beside messages", 0
    messages = example["messages"]
    roles = []
    for index, message in enumerate(messages, start=1):
        if not isinstance(message, dict):
            return f"message {index} is not an object", 0
        unknown = set(message) - MESSAGE_KEYS
        if unknown:
            return f"message {index} has unknown key {sorted(unknown)[0]!r}", 0
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            return f"message {index} has role {role!r}; use system, user or assistant", 0
        if not isinstance(content, str) or not content.strip():
            return f"message {index} ({role}) has no text", 0
        if "weight" in message and (role != "assistant" or message["weight"] not in (0, 1)):
            return f"message {index}: weight must be 0 or 1, on assistant messages only", 0
        roles.append(role)
    if roles and all(role == "system" for role in roles):
        return "has only a system message; an example needs a user and an assistant turn", 0
    if "system" in roles[1:]:
        return "has a system message after the first message; it may only come first", 0
    turns = [role for role in roles if role != "system"]
    if not turns or turns[0] != "user":
        return "must start (after any system message) with a user message", 0
    if "assistant" not in turns:
        return "has no assistant message to learn from", 0
    turns_as_sent = [Message(role=m["role"], content=m["content"]) for m in messages]
    count = count_chat_tokens(turns_as_sent, encoding)
    if count > limit:
        return f"has {count:,} tokens, over the model's {limit:,} per example; shorten it", 0
    return None, count


def auto_epochs(examples: int) -> int:
    """The epochs OpenAI picks on "auto" (as its cookbook describes): 3, more for small
    files (so about 100 examples are seen), fewer for huge ones (about 25,000)."""
    if examples * 3 < 100:
        return min(25, -(-100 // examples))
    if examples * 3 > 25_000:
        return max(1, 25_000 // examples)
    return 3


@dataclass(frozen=True)
class Estimate:
    tokens: int  # in the training file
    epochs: int
    auto: bool  # epochs left to OpenAI: this is its usual choice
    cost: float | None  # USD; None when the price table has no training price

    @property
    def trained(self) -> int:
        return self.tokens * self.epochs


def estimate(check: FileCheck, epochs: int | None, price: ModelPrice | None) -> Estimate:
    chosen = epochs or auto_epochs(check.examples)
    tokens = sum(check.tokens)
    cost = tokens * chosen * price.training / 1e6 if price and price.training else None
    return Estimate(tokens, chosen, epochs is None, cost)


def dataset_files(dataset: Path, validation: bool) -> tuple[Path, Path | None]:
    """The training file (and validation file) of a dataset folder or a .jsonl file."""
    if dataset.is_file():
        if validation:
            raise KahaniError(
                "--validation takes the validation split of a dataset folder; "
                f"{dataset} is a single file"
            )
        return dataset, None
    train = dataset / "openai" / "train.jsonl"
    if not dataset.is_dir():
        raise KahaniError(f"{dataset} does not exist; give a dataset folder or a .jsonl file")
    if not train.is_file():
        raise KahaniError(
            f"{dataset} has no openai/train.jsonl; `factory export` writes one for "
            "conversation datasets (hinglish)"
        )
    valid = dataset / "openai" / "validation.jsonl"
    if validation and not valid.is_file():
        raise KahaniError(
            f"--validation: {dataset} has no openai/validation.jsonl (its validation split is "
            "empty); leave --validation out"
        )
    return train, valid if validation else None


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Job:
    """What kahani shows of a fine-tuning job."""

    id: str
    status: str
    model: str
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    error: str | None = None  # "code: message" of a failed job
    created_at: int = 0
    suffix: str | None = None
    epochs: int | str | None = None


class FineTuningAPI:
    """The fine-tuning and file calls kahani makes, with failures as one-line KahaniErrors.

    The client never retries on its own: a retried upload or job creation whose first answer
    was lost would make a second one. Reruns resume from the record instead."""

    def __init__(self, base_url: str | None, api_key: str | None, timeout: float = 120) -> None:
        import openai

        from factory.providers.openai_chat import NO_KEY

        self.server = base_url or "OpenAI's API"
        self.client = openai.OpenAI(
            api_key=api_key or NO_KEY, base_url=base_url, timeout=timeout, max_retries=0
        )

    def _call(self, doing: str, call: Callable):
        import openai

        try:
            return call()
        except openai.AuthenticationError as err:
            raise KahaniError(
                f"{self.server} refused the API key (HTTP {err.status_code}) while {doing}"
            ) from None
        except openai.NotFoundError as err:
            raise KahaniError(f"{doing}: {self.server} says {_message(err)}") from None
        except openai.APIStatusError as err:
            raise KahaniError(
                f"{doing}: {self.server} answered HTTP {err.status_code}: {_message(err)}"
            ) from None
        except openai.APIConnectionError as err:
            cause = err.__cause__ or err
            raise KahaniError(f"{doing}: cannot reach {self.server} ({cause})") from None

    def find_upload(self, filename: str, size: int) -> str | None:
        """An earlier upload of this very file whose answer never arrived."""
        files = self._call(
            "listing uploaded files", lambda: self.client.files.list(purpose="fine-tune")
        )
        for file in files.data:
            if file.filename == filename and file.bytes == size:
                return file.id
        return None

    def file_exists(self, file_id: str) -> bool:
        import openai

        def exists() -> bool:
            try:
                self.client.files.retrieve(file_id)
            except openai.NotFoundError:
                return False
            return True

        return self._call(f"checking file {file_id}", exists)

    def upload(self, path: Path, filename: str) -> str:
        content = path.read_bytes()
        file = self._call(
            f"uploading {path}",
            lambda: self.client.files.create(file=(filename, content), purpose="fine-tune"),
        )
        return file.id

    def find_job(self, tag: str) -> Job | None:
        """The job kahani created with this tag, if its creation answer was lost."""
        jobs = self._call(
            "listing fine-tuning jobs",
            lambda: self.client.fine_tuning.jobs.list(metadata={"kahani": tag}, limit=10),
        )
        for job in jobs.data:
            if (job.metadata or {}).get("kahani") == tag:
                return _job(job)
        return None

    def create(self, record: JobRecord) -> Job:
        hyper = {k: v for k, v in record.hyperparameters.model_dump().items() if v is not None}
        extra = {"validation_file": record.validation.file_id} if record.validation else {}
        job = self._call(
            "creating the fine-tuning job",
            lambda: self.client.fine_tuning.jobs.create(
                model=record.model,
                training_file=record.training.file_id or "",
                suffix=record.suffix,
                method={"type": "supervised", "supervised": {"hyperparameters": hyper}},
                metadata={"kahani": record.tag},
                **extra,
            ),
        )
        return _job(job)

    def job(self, job_id: str) -> Job:
        return _job(
            self._call(
                f"looking up job {job_id}", lambda: self.client.fine_tuning.jobs.retrieve(job_id)
            )
        )

    def events(self, job_id: str, limit: int = 100) -> list[str]:
        """The job's newest `limit` events, oldest first, as "time level message" lines."""
        page = self._call(
            f"reading the events of job {job_id}",
            lambda: self.client.fine_tuning.jobs.list_events(job_id, limit=limit),
        )
        return [
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(e.created_at))}  "
            f"{e.level:<5}  {e.message}"
            for e in reversed(page.data)
        ]

    def cancel(self, job_id: str) -> Job:
        jobs = self.client.fine_tuning.jobs
        return _job(self._call(f"cancelling job {job_id}", lambda: jobs.cancel(job_id)))

    def jobs(self, limit: int) -> list[Job]:
        page = self._call(
            "listing fine-tuning jobs", lambda: self.client.fine_tuning.jobs.list(limit=limit)
        )
        return [_job(job) for job in page.data]


def _message(err) -> str:
    body = err.body if isinstance(err.body, dict) else {}
    return str(body.get("message") or err.message).splitlines()[0][:300]


def _job(job) -> Job:
    error = f"{job.error.code}: {job.error.message}" if job.error and job.error.code else None
    return Job(
        id=job.id,
        status=job.status,
        model=job.model,
        fine_tuned_model=job.fine_tuned_model,
        trained_tokens=job.trained_tokens,
        error=error,
        created_at=job.created_at,
        suffix=getattr(job, "user_provided_suffix", None),
        epochs=job.hyperparameters.n_epochs if job.hyperparameters else None,
    )


def uploaded(api: FineTuningAPI, upload: Upload, role: str, say: Say) -> str:
    """The file id of `upload`: the recorded one when it still exists, one whose upload answer
    was lost, or a new upload."""
    path = Path(upload.path)
    if upload.file_id and api.file_exists(upload.file_id):
        say(f"reusing  {upload.file_id} ({path}, uploaded before)")
        return upload.file_id
    # The sha in the name lets a rerun recognise an upload whose answer it never got.
    filename = f"kahani-{upload.sha256[:16]}-{role}.jsonl"
    found = api.find_upload(filename, path.stat().st_size)
    if found:
        say(f"reusing  {found} ({path}, uploaded before)")
        return found
    file_id = api.upload(path, filename)
    say(f"uploaded {path} as {file_id}")
    return file_id


def submit(api: FineTuningAPI, record: JobRecord, where: Path, say: Say) -> Job:
    """Upload the record's files and create its job, saving each id as soon as it exists.
    A record that already has its job is only followed."""
    if record.job_id:
        job = api.job(record.job_id)
        say(f"job      {job.id} exists ({job.status}); recorded in {where}")
        return job
    for role, upload in (("train", record.training), ("validation", record.validation)):
        if upload is not None:
            upload.file_id = uploaded(api, upload, role, say)
            save(where, record)
    job = api.find_job(record.tag)
    if job is not None:
        say(f"job      {job.id} found ({job.status}): created by an earlier run")
    else:
        try:
            job = api.create(record)
        except KahaniError as err:
            raise KahaniError(
                f"{err}; the uploaded files are recorded in {where}: run the same command "
                "again to create the job without uploading them again"
            ) from None
        say(f"job      {job.id} created ({job.status}); recorded in {where}")
    record.job_id, record.status = job.id, job.status
    save(where, record)
    return job


def follow(api: FineTuningAPI, job: Job, poll_seconds: float, say: Say) -> Job:
    """Poll until the job ends, printing its new events."""
    seen: set[str] = set()
    while True:
        for line in api.events(job.id):
            if line not in seen:
                seen.add(line)
                say(f"event    {line}")
        if job.status in ENDED:
            return job
        time.sleep(poll_seconds)
        job = api.job(job.id)


def judge_command(model: str, language: str | None, base_url: str | None) -> str:
    """The `judge score` command that evaluates a fine-tuned model."""
    command = f"judge score openai:{model} --lang {language or 'LANG'}"
    return command + (f" --base-url {base_url}" if base_url else "")


def describe(job: Job, language: str | None, base_url: str | None) -> list[str]:
    """A job as `factory finetune status` prints it."""
    lines = [f"job      {job.id} ({job.model}{', suffix ' + job.suffix if job.suffix else ''})"]
    lines.append(f"status   {job.status}")
    if job.trained_tokens:
        lines.append(f"trained  {job.trained_tokens:,} tokens, {job.epochs} epochs")
    if job.fine_tuned_model:
        lines.append(f"model    {job.fine_tuned_model}")
        lines.append(f"evaluate {judge_command(job.fine_tuned_model, language, base_url)}")
    return lines


def new_record(
    name: str,
    model: str,
    suffix: str | None,
    hyper: Hyperparameters,
    base_url: str | None,
    language: str | None,
    train: Path,
    valid: Path | None,
) -> JobRecord:
    return JobRecord(
        name=name,
        model=model,
        suffix=suffix,
        hyperparameters=hyper,
        base_url=base_url,
        language=language,
        training=Upload(path=str(train), sha256=sha256(train)),
        validation=Upload(path=str(valid), sha256=sha256(valid)) if valid else None,
    )


def reconcile(record: JobRecord, wanted: JobRecord, where: Path) -> JobRecord:
    """The record to go on with when one exists: the same settings are required; files that
    changed before any job exists are uploaded again, after it they are refused."""
    old, new = record.settings(), wanted.settings()
    for key in old:
        if old[key] != new[key]:
            raise KahaniError(
                f"{where} holds a job asked with {key} {old[key]!r}, not {new[key]!r}; ask the "
                "same, or give --name NEW for another job"
            )
    pairs = [(record.training, wanted.training), (record.validation, wanted.validation)]
    for recorded, current in pairs:
        if recorded is None or current is None or recorded.sha256 == current.sha256:
            continue
        if record.job_id:
            raise KahaniError(
                f"{current.path} changed since job {record.job_id} was created from it; give "
                "--name NEW for a job on the new data"
            )
        recorded.sha256, recorded.file_id = current.sha256, None
    return record
