"""Offline metrics behind one registry: `compute(["chrf", "cmi"], samples)`.

Importing this package registers every metric in REGISTRY (see `core.Metric` for the shape).
A metric given by name uses its registered settings; a `Metric` object can be passed instead
for other settings, such as `embedding.similarity_metrics("path/to/model")`.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from judge.metrics import codemix, diversity, embedding, reference, text
from judge.metrics.core import REGISTRY, Metric, MetricSkipped, Sample, Scores, mean, register

__all__ = [
    "REGISTRY",
    "Metric",
    "MetricResult",
    "MetricSkipped",
    "Sample",
    "Scores",
    "codemix",
    "compute",
    "diversity",
    "embedding",
    "reference",
    "register",
    "text",
]


@dataclass(frozen=True)
class MetricResult:
    """A metric over a list of samples: per_sample is aligned with the input (None where the
    sample lacked a field, was another language, or the value is undefined); a skipped metric
    has skipped_reason set and no values, never zeros."""

    name: str
    higher_is_better: bool | None
    signature: str
    per_sample: list[float | None]
    corpus: float | None
    skipped_reason: str | None = None
    details: dict[str, Any] | None = None


def compute(metrics: Iterable[str | Metric], samples: Sequence[Sample]) -> dict[str, MetricResult]:
    """Run each metric over the samples it applies to; unknown names raise KeyError."""
    return {m.name: _run(m, samples) for m in (_resolve(x) for x in metrics)}


def _resolve(metric: str | Metric) -> Metric:
    if isinstance(metric, Metric):
        return metric
    try:
        return REGISTRY[metric]
    except KeyError:
        raise KeyError(f"unknown metric {metric!r}; known: {', '.join(sorted(REGISTRY))}") from None


def _applies(metric: Metric, sample: Sample) -> bool:
    if metric.languages is not None and sample.get("language") not in metric.languages:
        return False
    return all(sample.get(field) is not None for field in metric.needs)


def _run(metric: Metric, samples: Sequence[Sample]) -> MetricResult:
    usable = [i for i, s in enumerate(samples) if _applies(metric, s)]
    per_sample: list[float | None] = [None] * len(samples)

    def skipped(reason: str) -> MetricResult:
        return MetricResult(
            metric.name, metric.higher_is_better, metric.signature, per_sample, None, reason
        )

    if not usable:
        langs = f" in {'/'.join(sorted(metric.languages))}" if metric.languages else ""
        return skipped(f"no sample has {' and '.join(sorted(metric.needs))}{langs}")
    try:
        scores = metric.fn([samples[i] for i in usable])
    except MetricSkipped as skip:
        return skipped(str(skip))
    for i, value in zip(usable, scores.per_sample, strict=True):
        per_sample[i] = value
    corpus = mean(scores.per_sample) if metric.kind == "sample" else scores.corpus
    return MetricResult(
        metric.name,
        metric.higher_is_better,
        scores.signature or metric.signature,
        per_sample,
        corpus,
        details=scores.details,
    )
