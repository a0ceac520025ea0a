"""`judge score`: sample a model, judge the samples, compute offline metrics, aggregate.

Everything lands in one evaluation folder (see ARCHITECTURE.md and `judge/results.py`):
completions.jsonl, scores.jsonl, controls.jsonl, summary.json, and the request stores that
make a second run of the same command free.
"""

import sys
from dataclasses import asdict
from pathlib import Path

from factory.errors import KahaniError
from factory.languages import get_language
from factory.llm import Endpoint
from judge import metrics
from judge.aggregate import mean_interval
from judge.judging import control_id, control_items
from judge.models import ModelSpec
from judge.panel import Panel, judge_panel, judgement_rows, summarize
from judge.prompts_io import prompts_fingerprint
from judge.results import (
    Completion,
    EvaluationSummary,
    Heldout,
    MetricSummary,
    SamplingConfig,
    SamplingSettings,
    read_completions,
    write_completions,
    write_controls,
    write_scores,
    write_summary,
)
from judge.rubric import Rubric
from judge.sampling import sample
from judge.settings import DEFAULT_TOP_K, ScoreSettings

STORY_METRICS = [
    "chrf",
    "bleu",
    "rouge_l",
    "distinct_1",
    "distinct_2",
    "self_bleu",
    "script_purity",
    "length_words",
]
CONVERSATION_METRICS = [*STORY_METRICS, "cmi", "m_index", "i_index", "transliteration_consistency"]


def evaluate(
    spec: ModelSpec,
    language: str,
    prompts: list[dict],
    out: Path,
    settings: ScoreSettings,
    sampler: Endpoint,
    judges: list[Endpoint],
    embedding_model: str | None = None,
    heldout: Path | None = None,
) -> EvaluationSummary:
    """Run the whole evaluation and write its files; returns the summary. Several judges
    make a panel (see `judge.panel`); none, metrics only."""
    lang = get_language(language)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise KahaniError(f"cannot write {out}: {err.strerror}") from None
    completions = _completions(spec, lang.name, lang.kind, prompts, out, settings, sampler)

    samples = [
        {
            "prompt": c.prompt,
            "completion": c.completion,
            "reference": c.reference,
            "language": lang.name,
        }
        for c in completions
    ]
    names = CONVERSATION_METRICS if lang.kind == "conversation" else STORY_METRICS
    wanted: list = list(names)
    if embedding_model:
        wanted += list(metrics.embedding.similarity_metrics(embedding_model))
    else:
        wanted += ["embedding_prompt_completion", "embedding_completion_reference"]
    if not any(s["reference"] for s in samples):
        wanted = [
            m
            for m in wanted
            if _name(m) not in ("chrf", "bleu", "rouge_l", "embedding_completion_reference")
        ]
    print(f"metrics: {len(wanted)} over {len(samples):,} completions", file=sys.stderr, flush=True)
    results = metrics.compute(wanted, samples)

    panel, controls = None, {}
    if judges:
        rubric = Rubric(lang.kind, lang.name)
        items = {c.id: (c.prompt, c.completion) for c in completions}
        controls = control_items(completions, lang.name, settings.controls)
        for (original_id, kind), pair in controls.items():
            items[control_id(original_id, kind)] = pair
        panel = judge_panel(
            rubric, items, judges, out / "judge.sqlite", settings.judge_retries, settings.repeat
        )

    write_scores(out, _score_rows(completions, results, panel))
    if panel is not None:
        write_controls(out, _control_rows(controls, completions, panel))
    summary = EvaluationSummary(
        model=spec.name,
        language=lang.name,
        prompts=len(prompts),
        samples_per_prompt=settings.samples,
        completions=len(completions),
        settings=SamplingSettings(
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
            top_k=_top_k(settings, sampler),
            top_p=settings.top_p,
            seed=settings.seed,
        ),
        metrics={name: _metric_summary(r) for name, r in results.items()},
    )
    if panel is None:
        summary.judge_note = "the judge did not run: no --judge was given"
    else:
        dimensions = Rubric(lang.kind, lang.name).dimensions
        ids = [c.id for c in completions]
        summary.judge, summary.panel = summarize(panel, ids, dimensions, controls)
    if heldout is not None:
        summary.heldout = _heldout_scores(spec, heldout)
    write_summary(out, summary)
    return summary


def _name(metric) -> str:
    return metric if isinstance(metric, str) else metric.name


def _top_k(settings: ScoreSettings, sampler: Endpoint) -> int | None:
    if settings.top_k is not None:
        return settings.top_k or None  # 0: off
    return DEFAULT_TOP_K if sampler.provider == "local" else None


def _completions(spec, language, kind, prompts, out, settings, sampler) -> list[Completion]:
    cfg = SamplingConfig(
        model=spec.name,
        language=language,
        kind=kind,
        samples=settings.samples,
        max_tokens=settings.max_tokens,
        temperature=settings.temperature,
        top_k=_top_k(settings, sampler),
        top_p=settings.top_p,
        seed=settings.seed,
        prompts_sha=prompts_fingerprint(prompts),
    )
    stored = read_completions(out, cfg)
    if stored is not None:
        return stored
    completions = sample(spec, prompts, cfg, sampler, out / "sampling.sqlite")
    write_completions(out, cfg, completions)
    return completions


def _score_rows(completions, results, panel: Panel | None) -> list[dict]:
    """scores.jsonl: each completion with its metrics and the judge's scores (the panel's
    mean, with every judgement under `judgements`, when there are several)."""
    rows = []
    for i, c in enumerate(completions):
        record = asdict(c)
        record["metrics"] = {
            name: r.per_sample[i] for name, r in results.items() if r.skipped_reason is None
        }
        if panel is not None:
            judgements = judgement_rows(panel, c.id)
            first = judgements[0]
            record["judge"] = {
                "scores": panel.scores(c.id),
                "reasoning": first["reasoning"],
                "problem": first["problem"],
                "attempts": first["attempts"],
                "raw": first["raw"],
            }
            if len(judgements) > 1:
                record["judgements"] = judgements
        rows.append(record)
    return rows


def _control_rows(controls, completions: list[Completion], panel: Panel) -> list[dict]:
    """controls.jsonl: each damaged copy beside its original, with the overall scores."""
    originals = {c.id: c.completion for c in completions}
    rows = []
    for (original_id, kind), (prompt, copy) in controls.items():
        original = panel.scores(original_id)
        damaged = panel.scores(control_id(original_id, kind))
        rows.append(
            {
                "original_id": original_id,
                "kind": kind,
                "prompt": prompt,
                "original": originals[original_id],
                "damaged": copy,
                "original_overall": original and original["overall"],
                "damaged_overall": damaged and damaged["overall"],
            }
        )
    return rows


def _metric_summary(r) -> MetricSummary:
    if r.skipped_reason:
        return MetricSummary(
            higher_is_better=r.higher_is_better, signature=r.signature, skipped=r.skipped_reason
        )
    return MetricSummary(
        **asdict(mean_interval(r.per_sample)),
        higher_is_better=r.higher_is_better,
        signature=r.signature,
        corpus=r.corpus,
        details=r.details or None,
    )


def _heldout_scores(spec: ModelSpec, path: Path) -> Heldout:
    """Perplexity and bits per byte of the model on held-out texts (a file's `text` column):
    bits per byte, unlike per-token loss, compares models with different tokenizers."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from factory.importer import read_rows
    from judge.metrics.lm import lm_scores

    if spec.hf_dir is None:
        raise KahaniError(
            "--heldout needs a local model: an API model gives no token probabilities"
        )
    texts = [str(row["text"]) for _, row, _ in read_rows(path) if row and row.get("text")]
    if not texts:
        raise KahaniError(f"{path} has no `text` column to score")
    model = AutoModelForCausalLM.from_pretrained(spec.hf_dir).eval()
    scores = lm_scores(model, AutoTokenizer.from_pretrained(spec.hf_dir), texts)
    return Heldout(
        file=str(path),
        texts=len(texts),
        tokens=scores.tokens,
        perplexity=scores.perplexity,
        bits_per_byte=scores.bits_per_byte,
    )
