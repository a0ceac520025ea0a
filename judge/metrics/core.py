"""The shared shape of a metric, and the registry every metric module adds itself to.

A metric is data plus one function, as in sacrebleu and lighteval: its name, which direction is
better, which sample fields it needs, whether its corpus value is the mean of the per-sample
values or a statistic of its own (corpus chrF pools n-gram counts; it is not a mean of sentence
chrF), and a signature string with every setting that changes the number, so a score in a
report can be reproduced.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Sample = Mapping[str, Any]  # prompt, completion, reference (optional), language


class MetricSkipped(Exception):
    """Raised by a metric that cannot run here (a model that is not available offline)."""


@dataclass(frozen=True)
class Scores:
    """What a metric function returns for the samples it was given.

    `corpus` is left None by per-sample metrics: compute() takes the mean of `per_sample`.
    `details` carries metric-specific extras for the report (the top inconsistent spellings).
    `signature` replaces the metric's own where a setting is known only once it runs (which
    embedding model loaded).
    """

    per_sample: list[float | None]
    corpus: float | None = None
    details: dict[str, Any] | None = None
    signature: str | None = None


@dataclass(frozen=True)
class Metric:
    """One registered metric.

    higher_is_better is None for descriptive statistics (length, code-mixing), which are
    reported but have no good direction. `languages` limits a metric to samples of those
    languages (the code-mixing metrics mean nothing on a Devanagari story); None means all.
    `fn` receives only the samples that have every field in `needs` and a fitting language.
    """

    name: str
    higher_is_better: bool | None
    needs: frozenset[str]
    kind: Literal["sample", "corpus"]
    signature: str
    fn: Callable[[Sequence[Sample]], Scores]
    languages: frozenset[str] | None = None


REGISTRY: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    if metric.name in REGISTRY:
        raise ValueError(f"metric {metric.name!r} is registered twice")
    REGISTRY[metric.name] = metric
    return metric


def mean(values: Sequence[float | None]) -> float | None:
    """Mean of the values that are present; None when none is."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None
