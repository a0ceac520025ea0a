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
from judge.judging import JudgeResult, control_items, control_summary, judge_items
from judge.models import ModelSpec
from judge.prompts_io import prompts_fingerprint
from judge.results import (
    Completion,
    ControlSummary,
    EvaluationSummary,
    Heldout,
    Interval,
    JudgeSummary,
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
    judge: Endpoint | None,
    embedding_model: str | None = None,
    heldout: Path | None = None,
) -> EvaluationSummary:
    """Run the whole evaluation and write its files; returns the summary."""
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

    judged, controls = None, {}
    if judge is not None:
        rubric = Rubric(lang.kind, lang.name)
        items = {c.id: (c.prompt, c.completion) for c in completions}
        controls = control_items(completions, lang.name, settings.controls)
        for (original_id, kind), pair in controls.items():
            items[f"control-{kind}-{original_id}"] = pair
        judged = judge_items(rubric, items, judge, out / "judge.sqlite", settings.judge_retries)

    write_scores(out, _score_rows(completions, results, judged))
    if judged is not None:
        write_controls(out, _control_rows(controls, judged))
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
    if judged is None:
        summary.judge_note = "the judge did not run: no --judge was given"
    else:
        summary.judge = _judge_summary(lang.kind, lang.name, completions, judged, controls, judge)
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


def _score_rows(completions, results, judged: JudgeResult | None) -> list[dict]:
    rows = []
    for i, c in enumerate(completions):
        record = asdict(c)
        record["metrics"] = {
            name: r.per_sample[i] for name, r in results.items() if r.skipped_reason is None
        }
        if judged is not None:
            j = judged.judgements[c.id]
            record["judge"] = {
                "scores": j.scores,
                "reasoning": j.reasoning,
                "problem": j.problem,
                "attempts": judged.attempts[c.id],
                "raw": judged.raw[c.id] if j.scores is None else None,
            }
        rows.append(record)
    return rows


def _control_rows(controls, judged: JudgeResult) -> list[dict]:
    rows = []
    for (original_id, kind), (prompt, copy) in controls.items():
        original = judged.judgements[original_id].scores
        damaged = judged.judgements[f"control-{kind}-{original_id}"].scores
        rows.append(
            {
                "original_id": original_id,
                "kind": kind,
                "prompt": prompt,
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


def _judge_summary(kind, language, completions, judged, controls, judge) -> JudgeSummary:
    ids = [c.id for c in completions]
    dims = Rubric(kind, language).dimensions
    return JudgeSummary(
        provider=judge.provider,
        model=judge.model,
        parse_failure_rate=sum(judged.judgements[i].scores is None for i in ids) / len(ids),
        dimensions={
            d: Interval(
                **asdict(mean_interval([(judged.judgements[i].scores or {}).get(d) for i in ids]))
            )
            for d in dims
        },
        controls={k: ControlSummary(**v) for k, v in control_summary(judged, controls).items()},
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
