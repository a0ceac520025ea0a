"""Scoring completions with an LLM judge: rubric, retries of unusable answers, controls."""

import hashlib
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from factory.languages import get_language
from factory.llm import Endpoint, ask
from factory.providers.base import GenerationParams
from judge.controls import KINDS, damaged
from judge.results import Completion
from judge.rubric import Judgement, Rubric


@dataclass
class JudgeResult:
    """Per item id: the judgement (scores None when missing) and the judge's raw answer."""

    judgements: dict[str, Judgement] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)


def judge_name(endpoint: Endpoint) -> str:
    """provider:model of a judge (the Batch API is OpenAI's, at half the price)."""
    return f"{endpoint.provider.removesuffix('-batch')}:{endpoint.model}"


def request_id(item_id: str, endpoint: Endpoint, messages: list, seed: int | None) -> str:
    """A store id naming the item and keyed by what was asked of whom: another judge, seed
    or text is another request, never an answer stored for the old one (one store holds
    every judge of a panel)."""
    asked = [judge_name(endpoint), seed, [m.model_dump() for m in messages]]
    digest = hashlib.sha256(json.dumps(asked, ensure_ascii=False).encode()).hexdigest()
    return f"{item_id}#{digest[:16]}"


def judge_items(
    rubric: Rubric,
    items: dict[str, tuple[str, str]],
    endpoint: Endpoint,
    store: Path,
    retries: int,
    seed: int | None = None,
) -> JudgeResult:
    """Judge (prompt, completion) items at temperature 0 (with `seed`, for a repeat);
    unusable answers are asked again (a different request, so never a cached bad answer),
    then recorded as missing."""
    params = GenerationParams(model=endpoint.model, temperature=0, json_mode=True, seed=seed)
    result = JudgeResult()
    todo = dict(items)
    for attempt in range(1, retries + 2):
        ids, requests = {}, []
        for item_id, (prompt, completion) in todo.items():
            messages = rubric.messages(prompt, completion, attempt)
            ids[item_id] = request_id(item_id, endpoint, messages, seed)
            requests.append((ids[item_id], messages))
        label = (
            f"judging with {judge_name(endpoint)}"
            + (f" (seed {seed})" if seed is not None else "")
            + (f", asking again ({attempt})" if attempt > 1 else "")
        )
        replies = ask(endpoint, store, requests, params, label)
        still_bad = {}
        for item_id, pair in todo.items():
            reply = replies[ids[item_id]]
            judgement = (
                rubric.parse(reply.text)
                if reply.text is not None
                else Judgement(None, "", f"request failed: {reply.error}")
            )
            result.judgements[item_id] = judgement
            result.raw[item_id] = reply.text or ""
            result.attempts[item_id] = attempt
            if judgement.scores is None and reply.text is not None:
                still_bad[item_id] = pair
        todo = still_bad
        if not todo:
            break
    return result


def control_items(completions: list[Completion], language: str, n: int) -> dict[str, tuple]:
    """(original id, kind) -> (prompt, damaged completion) for up to n completions per kind."""
    script = get_language(language).script
    controls = {}
    for kind in KINDS:
        made = 0
        for c in completions:
            if made >= n:
                break
            copy = damaged(c.completion, kind, script, seed=zlib.crc32(c.id.encode()))
            if copy is not None:
                controls[(c.id, kind)] = (c.prompt, copy)
                made += 1
    return controls


def control_id(original_id: str, kind: str) -> str:
    """The item id of a completion's damaged copy."""
    return f"control-{kind}-{original_id}"


def control_summary(
    overall: Mapping[str, float | None], controls: dict[tuple[str, str], tuple]
) -> dict[str, dict[str, float | int]]:
    """How often the judge put the original above its damaged copy, per kind of damage,
    from the overall score of each item id (None where the judge gave none)."""
    summary = {}
    for kind in KINDS:
        higher = ties = lower = missing = 0
        for original_id, k in controls:
            if k != kind:
                continue
            a, b = overall.get(original_id), overall.get(control_id(original_id, kind))
            if a is None or b is None:
                missing += 1
                continue
            higher += a > b
            ties += a == b
            lower += a < b
        pairs = higher + ties + lower
        summary[kind] = {
            "pairs": pairs,
            "original_higher": higher,
            "ties": ties,
            "original_lower": lower,
            "missing": missing,
            "rate": higher / pairs if pairs else 0.0,
        }
    return summary
