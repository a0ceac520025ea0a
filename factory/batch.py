"""`openai-batch`: the Files + Batches API, half price, answers within 24 hours.

Each batch id is committed to the run store the moment the server returns it, and every
batch carries the run's id in its metadata, so a resume first adopts batches the server
has that the store missed (a crash between create and commit) and never submits a prompt
that is still in an open batch. Partial results of failed, expired or cancelled batches
are kept; only the prompts without an answer are submitted again.
"""

import asyncio
import io
import json
import time

import openai

from factory.engine import AnswerHook, Job, Tally
from factory.errors import KahaniError
from factory.providers.base import GenerationParams
from factory.store import Answer, RunStore

MAX_REQUESTS_PER_FILE = 50_000
MAX_BYTES_PER_FILE = 200 * 1024 * 1024
TERMINAL = {"completed", "failed", "expired", "cancelled"}


def batch_lines(jobs: list[Job], params: GenerationParams) -> list[bytes]:
    lines = []
    for job in jobs:
        body: dict = {"model": params.model, "messages": [m.model_dump() for m in job.messages]}
        for name in ("temperature", "top_p", "max_tokens", "seed", "top_k"):
            if getattr(params, name) is not None:
                body[name] = getattr(params, name)
        if params.json_mode:
            body["response_format"] = {"type": "json_object"}
        line = {
            "custom_id": job.prompt_id,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": body,
        }
        lines.append(json.dumps(line, ensure_ascii=False).encode("utf-8") + b"\n")
    return lines


def split_files(lines: list[bytes]) -> list[list[int]]:
    """Indices of lines per file: at most 50,000 requests and 200 MB each."""
    files: list[list[int]] = [[]]
    size = 0
    for i, line in enumerate(lines):
        if files[-1] and (
            len(files[-1]) >= MAX_REQUESTS_PER_FILE or size + len(line) > MAX_BYTES_PER_FILE
        ):
            files.append([])
            size = 0
        files[-1].append(i)
        size += len(line)
    return [f for f in files if f]


class BatchEngine:
    """Requests as JSONL files and batches; the same interface as the online engine."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        store: RunStore,
        params: GenerationParams,
        tag: str,
        poll_seconds: float,
        max_attempts: int,
        tally: Tally,
        on_answer: AnswerHook,
    ) -> None:
        self.client = client
        self.store = store
        self.params = params
        self.tag = tag  # the store's id, in every batch's metadata
        self.poll_seconds = poll_seconds
        self.max_attempts = max_attempts
        self.tally = tally
        self.on_answer = on_answer
        self.submitted: dict[str, int] = {}  # prompt id -> submissions in this invocation
        self.given_up: set[str] = set()  # failed in max_attempts batches: recorded as failed
        self.stopping = asyncio.Event()

    def stop(self) -> None:
        """Stop waiting; the batches go on at the provider and the next run collects them."""
        self.stopping.set()

    async def close(self) -> None:
        await self.client.close()

    async def run(self, jobs: list[Job]) -> None:
        try:
            await self._run(jobs)
        except openai.APIError as err:
            raise KahaniError(
                f"the Batch API failed: {err}; nothing is lost, run the same command to resume"
            ) from None

    async def _run(self, jobs: list[Job]) -> None:
        await self._adopt_unrecorded_batches()
        by_id = {job.prompt_id: job for job in jobs}
        while not self.stopping.is_set():
            open_batches = self.store.open_batches()
            in_flight = {pid for _, ids in open_batches for pid in ids}
            answered = self.store.answered(by_id)
            todo = [
                j
                for pid, j in by_id.items()
                if pid not in in_flight and pid not in answered and pid not in self.given_up
            ]
            if todo:
                await self._submit(todo)
                continue
            if not open_batches:
                return
            await self._collect(open_batches)
            still_open = self.store.open_batches()
            self.tally.in_flight = sum(len(ids) for _, ids in still_open)
            self.tally.note = f"{len(still_open)} batches open" if still_open else ""
            if still_open:
                stop = asyncio.create_task(self.stopping.wait())
                await asyncio.wait([stop], timeout=self.poll_seconds)
                stop.cancel()

    async def _adopt_unrecorded_batches(self) -> None:
        known = {batch_id for batch_id, _ in self.store.batches()}
        async for batch in self.client.batches.list(limit=100):
            if (batch.metadata or {}).get("kahani_run") != self.tag or batch.id in known:
                continue
            content = await self.client.files.content(batch.input_file_id)
            ids = [json.loads(line)["custom_id"] for line in content.text.splitlines() if line]
            self.store.record_batch(batch.id, batch.input_file_id, ids, batch.status)

    async def _submit(self, jobs: list[Job]) -> None:
        lines = batch_lines(jobs, self.params)
        for part in split_files(lines):
            ids = [jobs[i].prompt_id for i in part]
            data = b"".join(lines[i] for i in part)
            upload = await self.client.files.create(
                file=("requests.jsonl", io.BytesIO(data)), purpose="batch"
            )
            batch = await self.client.batches.create(
                input_file_id=upload.id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                metadata={"kahani_run": self.tag},
            )
            self.store.record_batch(batch.id, upload.id, ids, batch.status)
            for pid in ids:
                self.submitted[pid] = self.submitted.get(pid, 0) + 1

    async def _collect(self, open_batches: list[tuple[str, list[str]]]) -> None:
        for batch_id, ids in open_batches:
            batch = await self.client.batches.retrieve(batch_id)
            if batch.status not in TERMINAL:
                continue
            answered: set[str] = set()
            if batch.output_file_id:
                content = await self.client.files.content(batch.output_file_id)
                answered = self._save_output(content.text)
            errors = {}
            if batch.error_file_id:
                content = await self.client.files.content(batch.error_file_id)
                errors = _error_lines(content.text)
            for pid in ids:
                if pid in answered:
                    continue
                reason = errors.get(pid) or f"batch {batch.status} before answering"
                if self.submitted.get(pid, 1) >= self.max_attempts:
                    self.store.save_failure(pid, self.submitted.get(pid, 1), reason)
                    self.given_up.add(pid)
                    self.tally.failed += 1
            self.store.close_batch(batch_id, batch.status)

    def _save_output(self, text: str) -> set[str]:
        """Every answer of an output file, committed in one transaction (a file holds up to
        50,000), then shown to the hook."""
        saved: list[tuple[str, str, Answer]] = []
        now = time.time()
        for line in text.splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            response = record.get("response") or {}
            if response.get("status_code") != 200:
                continue
            body = response["body"]
            choice = body["choices"][0]
            usage = body.get("usage") or {}
            pid = record["custom_id"]
            answer = Answer(
                text=choice["message"]["content"] or "",
                finish_reason=choice.get("finish_reason"),
                prompt_tokens=usage.get("prompt_tokens", 0),
                completion_tokens=usage.get("completion_tokens", 0),
                model=body.get("model", self.params.model),
                provider="openai-batch",
                latency_s=None,
                attempts=self.submitted.get(pid, 1),
                started_at=now,
                finished_at=now,
                batch=True,
            )
            key = self.store.request_key_of(pid)
            if key is None:
                continue  # not a prompt of this run
            saved.append((pid, key, answer))
        self.store.save_answers(saved)
        for pid, _, answer in saved:
            self.tally.count(answer)
            self.on_answer(self.tally, pid, answer)
        return {pid for pid, _, _ in saved}


def _error_lines(text: str) -> dict[str, str]:
    errors = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        error = record.get("error") or ((record.get("response") or {}).get("body") or {}).get(
            "error"
        )
        errors[record["custom_id"]] = (
            json.dumps(error, ensure_ascii=False)[:500] if error else "failed"
        )
    return errors
