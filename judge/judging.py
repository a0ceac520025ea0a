"""Scoring completions with an LLM judge: rubric, retries of unusable answers, controls."""

import zlib
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


def judge_items(
    rubric: Rubric,
    items: dict[str, tuple[str, str]],
    endpoint: Endpoint,
    store: Path,
    retries: int,
) -> JudgeResult:
    """Judge (prompt, completion) items at temperature 0; unusable answers are asked again
    (a different request, so never a cached bad answer), then recorded as missing."""
    params = GenerationParams(model=endpoint.model, temperature=0, json_mode=True)
    result = JudgeResult()
    todo = dict(items)
    for attempt in range(1, retries + 2):
        requests = [
            (f"{item_id}#a{attempt}", rubric.messages(prompt, completion, attempt))
            for item_id, (prompt, completion) in todo.items()
        ]
        label = f"judging with {endpoint.provider}:{endpoint.model}" + (
            f", asking again ({attempt})" if attempt > 1 else ""
        )
        replies = ask(endpoint, store, requests, params, label)
        still_bad = {}
        for item_id, pair in todo.items():
            reply = replies[f"{item_id}#a{attempt}"]
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


def control_summary(
    result: JudgeResult, controls: dict[tuple[str, str], tuple]
) -> dict[str, dict[str, float | int]]:
    """How often the judge put the original above its damaged copy, per kind of damage."""
    summary = {}
    for kind in KINDS:
        higher = ties = lower = missing = 0
        for original_id, k in controls:
            if k != kind:
                continue
            original = result.judgements.get(original_id)
            copy = result.judgements.get(f"control-{kind}-{original_id}")
            if not original or not copy or original.scores is None or copy.scores is None:
                missing += 1
                continue
            a, b = original.scores["overall"], copy.scores["overall"]
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
