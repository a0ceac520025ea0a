"""`judge score`: sample a model, judge the samples, compute offline metrics, aggregate.

Everything lands in one evaluation folder (see ARCHITECTURE.md): completions.jsonl,
scores.jsonl, controls.jsonl, summary.json, and the request stores that make a second
run of the same command free.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from factory.errors import KahaniError
from factory.languages import get_language
from judge import metrics
from judge.aggregate import mean_interval
from judge.judging import JudgeResult, control_items, control_summary, judge_items
from judge.llm import Endpoint
from judge.models import ModelSpec
from judge.prompts_io import prompts_fingerprint
from judge.rubric import Rubric
from judge.sampling import (
    Completion,
    SamplingConfig,
    read_completions,
    sample_api,
    sample_local,
    write_completions,
)

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


@dataclass(frozen=True)
class ScoreOptions:
    samples: int = 3
    max_new_tokens: int = 200
    temperature: float = 0.8
    top_k: int | None = 50
    seed: int = 0
    batch_size: int = 16
    controls: int = 10  # completions per kind of damage
    judge_retries: int = 2
    embedding_model: str | None = None
    heldout: Path | None = None  # texts for perplexity and bits per byte (local models)


def evaluate(
    spec: ModelSpec,
    language: str,
    prompts: list[dict],
    out: Path,
    options: ScoreOptions,
    sampler: Endpoint | None,
    judge: Endpoint | None,
) -> dict:
    """Run the whole evaluation and write its files; returns the summary."""
    lang = get_language(language)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise KahaniError(f"cannot write {out}: {err.strerror}") from None
    completions = _completions(spec, lang.name, lang.kind, prompts, out, options, sampler)

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
    if options.embedding_model:
        wanted += list(metrics.embedding.similarity_metrics(options.embedding_model))
    else:
        wanted += ["embedding_prompt_completion", "embedding_completion_reference"]
    if not any(s["reference"] for s in samples):
        wanted = [
            m
            for m in wanted
            if _name(m) not in ("chrf", "bleu", "rouge_l", "embedding_completion_reference")
        ]
    results = metrics.compute(wanted, samples)

    judged, controls = None, {}
    if judge is not None:
        rubric = Rubric(lang.kind, lang.name)
        items = {c.id: (c.prompt, c.completion) for c in completions}
        controls = control_items(completions, lang.name, options.controls)
        for (original_id, kind), pair in controls.items():
            items[f"control-{kind}-{original_id}"] = pair
        judged = judge_items(rubric, items, judge, out / "judge.sqlite", options.judge_retries)

    _write_scores(out / "scores.jsonl", completions, results, judged)
    if judged is not None:
        _write_controls(out / "controls.jsonl", controls, judged)
    summary = _summary(
        spec, lang.name, prompts, options, completions, results, judged, controls, judge
    )
    if options.heldout is not None:
        summary["heldout"] = _heldout_scores(spec, options.heldout)
    (out / "summary.json").write_text(
        json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8"
    )
    return summary


def _name(metric) -> str:
    return metric if isinstance(metric, str) else metric.name


def _completions(spec, language, kind, prompts, out, options, sampler) -> list[Completion]:
    cfg = SamplingConfig(
        model=spec.name,
        language=language,
        kind=kind,
        samples=options.samples,
        max_new_tokens=options.max_new_tokens,
        temperature=options.temperature,
        top_k=options.top_k,
        seed=options.seed,
        prompts_sha=prompts_fingerprint(prompts),
    )
    path = out / "completions.jsonl"
    stored = read_completions(path, cfg)
    if stored is not None:
        return stored
    if spec.hf_dir is not None:
        completions = sample_local(spec, prompts, cfg, options.batch_size)
    else:
        completions = sample_api(spec, prompts, cfg, sampler, out / "sampling.sqlite")
    write_completions(path, cfg, completions)
    return completions


def _write_scores(path: Path, completions, results, judged: JudgeResult | None) -> None:
    with path.open("w", encoding="utf-8") as f:
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
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def _write_controls(path: Path, controls, judged: JudgeResult) -> None:
    with path.open("w", encoding="utf-8") as f:
        for (original_id, kind), (prompt, copy) in controls.items():
            original = judged.judgements[original_id].scores
            damaged = judged.judgements[f"control-{kind}-{original_id}"].scores
            f.write(
                json.dumps(
                    {
                        "original_id": original_id,
                        "kind": kind,
                        "prompt": prompt,
                        "damaged": copy,
                        "original_overall": original and original["overall"],
                        "damaged_overall": damaged and damaged["overall"],
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )


def _summary(
    spec, language, prompts, options, completions, results, judged, controls, judge
) -> dict:
    summary: dict = {
        "model": spec.name,
        "language": language,
        "prompts": len(prompts),
        "samples_per_prompt": options.samples,
        "completions": len(completions),
        "settings": {
            "max_new_tokens": options.max_new_tokens,
            "temperature": options.temperature,
            "top_k": options.top_k,
            "seed": options.seed,
        },
        "metrics": {},
        "judge": None,
    }
    for name, r in results.items():
        entry = {"higher_is_better": r.higher_is_better, "signature": r.signature}
        if r.skipped_reason:
            entry["skipped"] = r.skipped_reason
        else:
            entry.update(asdict(mean_interval(r.per_sample)), corpus=r.corpus)
            if r.details:
                entry["details"] = r.details
        summary["metrics"][name] = entry
    if judged is None:
        summary["judge_note"] = "the judge did not run: no --judge was given"
        return summary
    ids = [c.id for c in completions]
    dims = Rubric(get_language(language).kind, language).dimensions
    summary["judge"] = {
        "provider": judge.provider,
        "model": judge.model,
        "parse_failure_rate": sum(judged.judgements[i].scores is None for i in ids) / len(ids),
        "dimensions": {
            d: asdict(mean_interval([(judged.judgements[i].scores or {}).get(d) for i in ids]))
            for d in dims
        },
        "controls": control_summary(judged, controls),
    }
    return summary


def _heldout_scores(spec: ModelSpec, path: Path) -> dict:
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
    return {
        "file": str(path),
        "texts": len(texts),
        "tokens": scores.tokens,
        "perplexity": scores.perplexity,
        "bits_per_byte": scores.bits_per_byte,
    }
