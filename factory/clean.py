"""`factory clean`: validate every raw answer, remove duplicates, record every rejection.

Verdicts live in the run store, one row per answer: accepted rows hold the clean text,
rejected rows a reason code and a detail. Verdicts are derived data: cleaning again
recomputes them, and no raw answer is ever changed or deleted.
"""

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from factory.decontaminate import Decontaminator
from factory.dedup import Deduplicator
from factory.errors import KahaniError
from factory.grading import UNKNOWN_PROMPT, Grading
from factory.languages import Language, get_language
from factory.paths import TEMPLATES_DIR
from factory.settings import CleanSettings, RunConfig
from factory.store import INPUT_REASONS, RunStore, VerdictRow
from factory.templates import PromptTemplate, find_template, template_path
from factory.validate import Limits, Verdict, check_conversation, check_story


class Cleaner:
    """The checks for one run: its language, the JSON key answers hold, forbidden words."""

    def __init__(
        self,
        language: Language,
        json_key: str | None,
        forbidden: list[str],
        limits: Limits,
        json_required: bool = True,
    ) -> None:
        self.language = language
        self.json_key = json_key
        self.forbidden = forbidden
        self.limits = limits
        self.json_required = json_required

    @classmethod
    def for_run(cls, config: RunConfig, settings: CleanSettings | None = None) -> "Cleaner":
        """A generation run's answers hold the JSON its template asked for. `settings`
        overrides the thresholds stored with the run."""
        language = get_language(config.lang)
        limits = limits_of(settings or config)
        if config.provider == "import":
            return cls.for_import(language, limits)
        path = (
            find_template(config.template)
            if config.template
            else template_path(TEMPLATES_DIR, language.kind, language.name)
        )
        header = PromptTemplate(Path(path)).header
        return cls(language, header.json_key, header.forbidden, limits)

    @classmethod
    def for_import(cls, language: Language, limits: Limits) -> "Cleaner":
        """Imported stories are usually plain text; a JSON answer is unwrapped if present."""
        key = "conversation" if language.kind == "conversation" else "story"
        return cls(language, key, [], limits, json_required=False)

    def check(self, answer: str, finish_reason: str | None, variables: dict) -> Verdict:
        if self.language.kind == "conversation":
            return check_conversation(answer, finish_reason, variables, self.json_key, self.limits)
        return check_story(
            answer,
            finish_reason,
            variables,
            self.language,
            self.json_key,
            self.limits,
            self.forbidden,
            self.json_required,
        )


def limits_of(settings: CleanSettings) -> Limits:
    """The validators' thresholds among a run's (or the flags') clean settings."""
    return Limits(
        min_words=settings.min_words,
        max_words=settings.max_words,
        min_script_share=settings.min_script_share,
        min_cmi=settings.min_cmi,
    )


def settings_for(config: RunConfig, flags: dict[str, Any]) -> CleanSettings:
    """The thresholds to clean a run with: those it was generated with, then the flags given."""
    stored = config.model_dump(include=set(CleanSettings.model_fields))
    return CleanSettings.model_validate({**stored, **flags})


def check_answer(
    cleaner: Cleaner,
    decontaminator: Decontaminator | None,
    answer: str,
    finish_reason: str | None,
    variables: dict,
) -> Verdict:
    """What one answer is before deduplication: validated, then decontaminated (so a
    contaminated text never stands for its near-copies). The in-process and the distributed
    clean both judge answers here."""
    verdict = cleaner.check(answer, finish_reason, variables)
    found = decontaminator.check(verdict.text) if verdict.ok and decontaminator else None
    if found:
        return Verdict("contaminated", found.detail(), verdict.text, verdict.messages)
    return verdict


def verdict_row(prompt_id: str, verdict: Verdict) -> VerdictRow:
    return VerdictRow(prompt_id, verdict.reason, verdict.detail, verdict.text, verdict.messages)


def duplicate_row(
    prompt_id: str, verdict: Verdict, kind: str, duplicate_of: str, similarity: float
) -> VerdictRow:
    """A valid answer rejected as a `duplicate` or `near_duplicate` of the kept `duplicate_of`
    (the in-process and the distributed clean both build these rows here)."""
    detail = f"{kind.replace('_', ' ')} of {duplicate_of} (Jaccard {similarity:.2f})"
    return VerdictRow(
        prompt_id, kind, detail, verdict.text, verdict.messages, duplicate_of, similarity
    )


def failure_rows(store: RunStore) -> list[VerdictRow]:
    """Prompts that never got an answer are missing from the dataset too: say why."""
    rows = []
    for prompt_id, error in store.failed_prompts() + store.invalid_prompts():
        reason, _, detail = error.partition(": ")
        if reason not in INPUT_REASONS:
            reason, detail = "request_failed", error
        rows.append(VerdictRow(prompt_id, reason, detail))
    return rows


def clean_store(
    store: RunStore,
    cleaner: Cleaner,
    threshold: float,
    *,
    decontaminator: Decontaminator | None = None,
    grading: Grading | None = None,
) -> Counter[str]:
    """Judge every answer of a run in prompt order; returns counts by reason ("ok" = kept).

    The checks run in order of cost: validation, then decontamination (before deduplication,
    so a contaminated text never stands for its near-copies), then deduplication, then the
    judge's grades of what is still kept."""
    dedup = Deduplicator(threshold=threshold)
    rows = []
    for prompt_id, variables, answer, finish_reason in store.answers_in_order():
        verdict = check_answer(cleaner, decontaminator, answer, finish_reason, variables)
        if not verdict.ok:
            rows.append(verdict_row(prompt_id, verdict))
            continue
        seen = dedup.add(prompt_id, verdict.text)
        if seen.status == "kept":
            rows.append(verdict_row(prompt_id, verdict))
            continue
        kind = "duplicate" if seen.status == "exact_duplicate" else "near_duplicate"
        rows.append(duplicate_row(prompt_id, verdict, kind, seen.duplicate_of, seen.jaccard))
    if grading is not None:
        rows = _graded(store, rows, grading)
    else:
        store.replace_grades([], None)  # grades are derived like verdicts: none this time
    rows += failure_rows(store)
    store.replace_verdicts(rows)
    return Counter(row.reason or "ok" for row in rows)


def _graded(store: RunStore, rows: list[VerdictRow], grading: Grading) -> list[VerdictRow]:
    """Grade the kept rows (the judge sees what the writer was asked and the clean text);
    with a threshold, those below it become `low_score` and those without a usable grade
    `unscored`. The grades are saved whatever the threshold."""
    kept = [row for row in rows if row.reason is None]
    sent = store.messages_of(row.prompt_id for row in kept)
    grades = grading.grade(
        {row.prompt_id: (_asked(sent.get(row.prompt_id)), row.text) for row in kept}
    )
    store.replace_grades(grades.values(), grading.describe())
    if grading.min_score is None:
        return rows
    key, threshold = grading.rubric.score_key, grading.min_score
    judged = []
    for row in rows:
        grade = grades.get(row.prompt_id) if row.reason is None else None
        if grade is not None and grade.score is None:
            row = replace(row, reason="unscored", detail=f"{grading.judge}: {grade.problem}")
        elif grade is not None and grade.score < threshold:
            detail = f"{key} {grade.score:g} < --min-score {threshold:g} ({grading.judge})"
            row = replace(row, reason="low_score", detail=detail)
        judged.append(row)
    return judged


def _asked(messages: list[dict] | None) -> str:
    """The last user message sent for a prompt (imported texts had none)."""
    users = [m["content"] for m in messages or [] if m.get("role") == "user"]
    return users[-1] if users else UNKNOWN_PROMPT


def rejects_summary(counts: Counter[str]) -> str:
    rejected = {k: v for k, v in counts.items() if k != "ok"}
    if not rejected:
        return "none"
    return ", ".join(
        f"{reason} {n:,}" for reason, n in sorted(rejected.items(), key=lambda kv: -kv[1])
    )


def require_kept(counts: Counter[str]) -> None:
    """An empty dataset is an error that says why."""
    if counts.get("ok", 0) == 0:
        total = sum(counts.values())
        if total == 0:
            raise KahaniError("no answers to clean: the run has no responses yet")
        raise KahaniError(f"all {total:,} answers were rejected: {rejects_summary(counts)}")
