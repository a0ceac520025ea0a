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


def _weighted_ranks(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Ranks (R, n) of n values in each of R weighted copies of them (weight k: the value
    appears k times, as in a bootstrap resample), ties given the mean of the ranks they span."""
    distinct, inverse = np.unique(values, return_inverse=True)
    counts = weights @ (inverse[:, None] == np.arange(len(distinct))).astype(float)  # (R, V)
    ends = np.cumsum(counts, axis=1)
    return (ends - (counts - 1) / 2)[:, inverse]


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return (weights * values).sum(axis=-1) / weights.sum(axis=-1)


def _spearman(data: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Spearman's rho of the two rows of data, in each weighted copy (R,)."""
    x, y = (_weighted_ranks(row, weights) for row in data)
    x = x - _weighted_mean(x, weights)[:, None]
    y = y - _weighted_mean(y, weights)[:, None]
    cov, var_x, var_y = ((weights * a * b).sum(axis=1) for a, b in ((x, y), (x, x), (y, y)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((var_x > 1e-12) & (var_y > 1e-12), cov / np.sqrt(var_x * var_y), np.nan)


def _quadratic_kappa(data: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Quadratic-weighted kappa of the two rows of data, in each weighted copy (R,)."""
    x, y = data
    mean_x, mean_y = _weighted_mean(x, weights), _weighted_mean(y, weights)
    var_x = _weighted_mean((x - mean_x[:, None]) ** 2, weights)
    var_y = _weighted_mean((y - mean_y[:, None]) ** 2, weights)
    # mean over all (i, j) of (x_i - y_j)^2 = var x + var y + (mean x - mean y)^2
    chance = var_x + var_y + (mean_x - mean_y) ** 2
    observed = _weighted_mean((x - y) ** 2, weights)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(chance > 0, 1 - observed / chance, np.nan)


def _coincidences(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each item's contribution to Krippendorff's coincidence matrix, (items, v, v), and the
    v distinct values, from a (raters, items) matrix with NaN for missing values; items with
    fewer than two values contribute nothing. The matrix of a set of items (a bootstrap
    resample too) is the sum of their contributions."""
    values, coded = np.unique(data[~np.isnan(data)], return_inverse=True)
    codes = np.full(data.shape, -1)
    codes[~np.isnan(data)] = coded
    v = len(values)
    # counts[u, c]: how many raters gave value c to item u
    counts = np.zeros((data.shape[1], v))
    for row in codes:
        present = row >= 0
        counts[np.flatnonzero(present), row[present]] += 1
    m = counts.sum(axis=1)
    # o_u[c, k] = (pairs c-k within item u) / (m_u - 1)
    pairs = counts[:, :, None] * counts[:, None, :]
    pairs[:, np.arange(v), np.arange(v)] -= counts
    usable = m >= 2
    pairs[~usable] = 0
    return pairs / np.where(usable, m - 1, 1)[:, None, None], values


def _alpha_of(o: np.ndarray, values: np.ndarray, level: Level) -> np.ndarray:
    """Alpha from coincidence matrices (R, v, v), one per resample; NaN where undefined."""
    v = len(values)
    n_c = o.sum(axis=2)  # (R, v)
    n = n_c.sum(axis=1)  # (R,)
    if level == "nominal":
        delta = np.broadcast_to(1.0 - np.eye(v), o.shape)
    elif level == "interval":
        delta = np.broadcast_to((values[:, None] - values[None, :]) ** 2, o.shape)
    else:  # ordinal: (sum of n_g for g from c to k, minus half of n_c and n_k) squared
        cumulative = np.cumsum(n_c, axis=1)
        index = np.arange(v)
        lo, hi = np.minimum.outer(index, index), np.maximum.outer(index, index)
        between = cumulative[:, hi] - cumulative[:, lo] + n_c[:, lo]
        delta = (between - (n_c[:, :, None] + n_c[:, None, :]) / 2) ** 2
    expected = np.einsum("ri,rk,rik->r", n_c, n_c, delta)
    observed = np.einsum("rik,rik->r", o, delta)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected > 0, 1 - (n - 1) * observed / expected, np.nan)


def _times_drawn(items: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, items): how often each bootstrap resample of the items drew each one."""
    draws = np.random.default_rng(seed).integers(0, items, size=(n_resamples, items))
    return np.stack([np.bincount(row, minlength=items) for row in draws]).astype(float)


def _with_interval(
    statistic: Callable[[np.ndarray, np.ndarray], np.ndarray],
    data: np.ndarray,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> Agreement:
    """The statistic of a (raters, items) matrix and its bootstrap interval over items; the
    statistic takes the data and weights (R, items), a resample being a weighting."""
    items = data.shape[1]
    value = float(statistic(data, np.ones((1, items)))[0]) if items else np.nan
    if np.isnan(value):
        return Agreement(None, None, None, items)
    resampled = statistic(data, _times_drawn(items, n_resamples, seed))
    return _interval(value, resampled, confidence, items)


def _interval(value: float, resampled: np.ndarray, confidence: float, items: int) -> Agreement:
    """The percentile interval of the resampled statistics around the value."""
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
    items = data.shape[1]
    if not items:
        return Agreement(None, None, None, 0)
    per_item, values = _coincidences(data)  # (items, v, v)
    value = float(_alpha_of(per_item.sum(axis=0)[None], values, level)[0])
    if np.isnan(value):
        return Agreement(None, None, None, items)
    # a resample's coincidences: each item's, times how often the resample drew it
    times_drawn = _times_drawn(items, n_resamples, seed)
    resampled = _alpha_of(np.einsum("ru,uik->rik", times_drawn, per_item), values, level)
    return _interval(value, resampled, confidence, items)


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
