"""Agreement between judges, and of one judge with itself, on 1-10 scores.

A panel's mean is worth more than one judge only if the judges measure the same thing; these
statistics say whether they do. Each takes item-aligned scores (None where a judge has no
usable score) and comes with a percentile-bootstrap interval over items.

- Spearman's rho: rank correlation of two judges (ties get their average rank).
- Quadratic-weighted Cohen's kappa: agreement of two judges beyond chance, a disagreement
  costing the square of its size, 1 - sum (x - y)^2 / sum over chance pairs (x_i - y_j)^2.
  Weights use the scores themselves, so 1 and 10 are 9 apart even where nobody gave 2-9
  (scikit-learn's `cohen_kappa_score` spaces the labels it sees evenly unless given `labels`).
- Krippendorff's alpha, ordinal: any number of judges, missing scores allowed; 1 - observed
  over expected disagreement, a disagreement weighed by how many scores lie between the two
  values (Krippendorff 2011, "Computing Krippendorff's alpha-reliability").
- Self-consistency: alpha over K repeated judgements of the same items by one judge.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import numpy as np

from judge.aggregate import CONFIDENCE, N_RESAMPLES, SEED

Scores = Sequence[float | None]
Level = Literal["ordinal", "interval", "nominal"]


@dataclass(frozen=True)
class Agreement:
    value: float | None  # None where the statistic is undefined (e.g. a judge gave one score)
    low: float | None
    high: float | None
    n: int  # items used


def _matrix(rows: Sequence[Scores]) -> np.ndarray:
    """(raters, items) float array, NaN where a score is missing."""
    return np.array([[np.nan if v is None else float(v) for v in row] for row in rows], float)


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given the mean of the ranks they span."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2)[inverse]


def _spearman(data: np.ndarray) -> float:
    x, y = data
    if x.std() == 0 or y.std() == 0:
        return np.nan
    return float(np.corrcoef(_ranks(x), _ranks(y))[0, 1])


def _quadratic_kappa(data: np.ndarray) -> float:
    x, y = data
    # mean over all (i, j) of (x_i - y_j)^2 = var x + var y + (mean x - mean y)^2
    chance = x.var() + y.var() + (x.mean() - y.mean()) ** 2
    return float(1 - np.mean((x - y) ** 2) / chance) if chance > 0 else np.nan


def _alpha(data: np.ndarray, level: Level = "ordinal") -> float:
    """Krippendorff's alpha of a (raters, items) matrix with NaN for missing values."""
    pairable = data[:, (~np.isnan(data)).sum(axis=0) >= 2]  # items with two or more values
    if pairable.size == 0:
        return np.nan
    values, coded = np.unique(pairable[~np.isnan(pairable)], return_inverse=True)
    if len(values) < 2:
        return np.nan
    codes = np.full(pairable.shape, -1)
    codes[~np.isnan(pairable)] = coded
    v = len(values)
    # counts[u, c]: how many judges gave value c to item u
    counts = np.zeros((pairable.shape[1], v))
    for row in codes:
        present = row >= 0
        counts[np.flatnonzero(present), row[present]] += 1
    m = counts.sum(axis=1, keepdims=True)
    # coincidences o[c, k] = sum over items of (pairs c-k within the item) / (m_u - 1)
    pairs = counts[:, :, None] * counts[:, None, :]
    pairs[:, np.arange(v), np.arange(v)] -= counts
    o = (pairs / (m[:, :, None] - 1)).sum(axis=0)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if level == "nominal":
        delta = 1.0 - np.eye(v)
    elif level == "interval":
        delta = (values[:, None] - values[None, :]) ** 2
    else:  # ordinal: (sum of n_g for g from c to k, minus half of n_c and n_k) squared
        cumulative = np.cumsum(n_c)
        index = np.arange(v)
        lo, hi = np.minimum.outer(index, index), np.maximum.outer(index, index)
        between = cumulative[hi] - cumulative[lo] + n_c[lo]
        delta = (between - (n_c[:, None] + n_c[None, :]) / 2) ** 2
    expected = (np.outer(n_c, n_c) * delta).sum()
    if expected == 0:
        return np.nan
    return float(1 - (n - 1) * (o * delta).sum() / expected)


def _with_interval(
    statistic: Callable[[np.ndarray], float],
    data: np.ndarray,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> Agreement:
    """The statistic of a (raters, items) matrix and its bootstrap interval over items."""
    value = statistic(data) if data.shape[1] else np.nan
    if np.isnan(value):
        return Agreement(None, None, None, data.shape[1])
    rng = np.random.default_rng(seed)
    items = data.shape[1]
    resampled = np.array(
        [statistic(data[:, rng.integers(0, items, items)]) for _ in range(n_resamples)]
    )
    resampled = resampled[~np.isnan(resampled)]  # a resample with one distinct score
    tail = (1 - confidence) / 2
    low, high = np.quantile(resampled, [tail, 1 - tail]) if len(resampled) else (value, value)
    return Agreement(value, min(float(low), value), max(float(high), value), items)


def _both_present(x: Scores, y: Scores) -> np.ndarray:
    if len(x) != len(y):
        raise ValueError(f"score lists differ in length: {len(x)} and {len(y)}")
    data = _matrix([x, y])
    return data[:, ~np.isnan(data).any(axis=0)]


def spearman(
    x: Scores,
    y: Scores,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> Agreement:
    """Spearman's rho over the items both judges scored."""
    return _with_interval(_spearman, _both_present(x, y), confidence, n_resamples, seed)


def quadratic_kappa(
    x: Scores,
    y: Scores,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> Agreement:
    """Quadratic-weighted Cohen's kappa over the items both judges scored."""
    return _with_interval(_quadratic_kappa, _both_present(x, y), confidence, n_resamples, seed)


def krippendorff_alpha(
    by_rater: Sequence[Scores],
    level: Level = "ordinal",
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> Agreement:
    """Krippendorff's alpha of raters' item-aligned scores (one list per rater, None for
    missing); items scored by fewer than two raters carry no information and are left out."""
    data = _matrix(by_rater)
    if len({len(row) for row in by_rater}) > 1:
        raise ValueError("every rater's list must have one entry per item")
    data = data[:, (~np.isnan(data)).sum(axis=0) >= 2]
    return _with_interval(lambda d: _alpha(d, level), data, confidence, n_resamples, seed)


def self_consistency(repeats: Sequence[Scores], **options) -> Agreement:
    """A judge's agreement with itself: ordinal alpha over its K repeated judgements of the
    same items (one list per repeat)."""
    return krippendorff_alpha(repeats, "ordinal", **options)


@dataclass(frozen=True)
class PairAgreement:
    a: str
    b: str
    spearman: Agreement
    quadratic_kappa: Agreement


@dataclass(frozen=True)
class PanelAgreement:
    judges: list[str]
    pairs: list[PairAgreement]  # every pair of judges
    krippendorff_alpha: Agreement  # all judges at once, ordinal


def panel_agreement(by_judge: Mapping[str, Scores], **options) -> PanelAgreement:
    """Agreement of a panel on one dimension: each pair's Spearman and quadratic kappa, and
    the panel's ordinal alpha."""
    judges = list(by_judge)
    pairs = [
        PairAgreement(
            a,
            b,
            spearman(by_judge[a], by_judge[b], **options),
            quadratic_kappa(by_judge[a], by_judge[b], **options),
        )
        for a, b in combinations(judges, 2)
    ]
    alpha = krippendorff_alpha([by_judge[j] for j in judges], "ordinal", **options)
    return PanelAgreement(judges, pairs, alpha)


def panel_mean(by_judge: Mapping[str, Scores]) -> list[float | None]:
    """Per item, the mean of the judges that scored it (None where none did)."""
    data = _matrix(list(by_judge.values()))
    present = ~np.isnan(data)
    sums = np.where(present, data, 0).sum(axis=0)
    counts = present.sum(axis=0)
    return [float(s / c) if c else None for s, c in zip(sums, counts, strict=True)]
