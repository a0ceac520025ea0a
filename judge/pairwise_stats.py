"""Statistics of pairwise judgements: order-consistent outcomes, win rates, a length-controlled
win rate and Bradley-Terry ratings, each with a bootstrap interval over prompts.

Pure functions of `Comparison` records, so they are tested on hand-made outcomes.

- Each pair of texts is judged twice, once in each order (MT-bench). Two verdicts naming the
  same text give that text the win; anything else (opposite winners, or a win and a tie) is
  position-inconsistent and counts as a tie. The inconsistency rate says how much of the
  judge's "preference" is only the position.
- A win rate is the mean outcome, ties as half a win; prompts are the unit of resampling
  (samples of one prompt are averaged first), as in `judge.aggregate`.
- The length-controlled win rate (after AlpacaEval 2): a logistic regression of the outcome on
  tanh(length difference / its standard deviation); the win rate it predicts at zero length
  difference is the win rate a judge's taste for longer answers cannot buy.
- Bradley-Terry ratings (as in Chatbot Arena): P(i beats j) = p_i / (p_i + p_j), fitted by
  Hunter's (2004) MM algorithm on win counts (ties half a win each way), shown on the Elo
  scale R = 1000 + 400 log10(p_i / geometric mean of p): 400 points is 10:1 odds.
"""

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from judge.aggregate import CONFIDENCE, N_RESAMPLES, SEED, Interval, mean_interval

ELO_SCALE = 400 / math.log(10)
ELO_ANCHOR = 1000.0
# A virtual tie added to every judged pair of systems keeps Bradley-Terry ratings finite when
# one system wins every comparison (its MLE would be infinite); on 50 prompts it moves a
# rating by a few points.
BT_PRIOR_TIES = 1.0
LC_RIDGE = 1e-3  # L2 penalty that keeps the logistic fit finite when one side always wins


@dataclass(frozen=True)
class Comparison:
    """Two systems' texts for one prompt (one sample index), judged in both orders.

    `score` is for `first`: 1 a win, 0 a loss, 0.5 a tie or an order-inconsistent verdict;
    None when a verdict is missing (an unusable answer after retries).
    `length_difference` is len(first's text) - len(second's text), in words.
    """

    prompt_id: str
    first: str
    second: str
    score: float | None
    consistent: bool | None
    length_difference: float = 0.0


def combine_orders(forward: str | None, backward: str | None) -> tuple[float | None, bool | None]:
    """One outcome from two verdicts ("A", "B", "tie" or None when missing): `forward` showed
    the first system as A, `backward` showed it as B. Returns (score for the first system,
    whether the verdicts agreed); (None, None) when either is missing."""
    if forward is None or backward is None:
        return None, None
    first_forward = {"A": 1.0, "B": 0.0, "tie": 0.5}[forward]
    first_backward = {"A": 0.0, "B": 1.0, "tie": 0.5}[backward]
    if first_forward == first_backward:
        return first_forward, True
    return 0.5, False


@dataclass(frozen=True)
class Consistency:
    pairs: int  # comparisons with both verdicts
    inconsistent: int
    rate: float | None  # inconsistent / pairs
    missing: int


def position_consistency(comparisons: Sequence[Comparison]) -> Consistency:
    """How often the two orders disagreed."""
    judged = [c for c in comparisons if c.consistent is not None]
    inconsistent = sum(1 for c in judged if not c.consistent)
    rate = inconsistent / len(judged) if judged else None
    return Consistency(len(judged), inconsistent, rate, len(comparisons) - len(judged))


def _oriented(comparisons: Sequence[Comparison], a: str, b: str) -> list[Comparison]:
    """The comparisons between a and b, each with `a` as the first system."""
    out = []
    for c in comparisons:
        if (c.first, c.second) == (a, b):
            out.append(c)
        elif (c.first, c.second) == (b, a):
            score = None if c.score is None else 1.0 - c.score
            out.append(Comparison(c.prompt_id, a, b, score, c.consistent, -c.length_difference))
    return out


@dataclass(frozen=True)
class WinRate:
    a: str
    b: str
    wins: int  # of a over b, order-consistent
    ties: int  # including order-inconsistent verdicts
    losses: int
    missing: int
    rate: Interval  # a's win rate (ties half), with its interval; n counts prompts


def _per_prompt(comparisons: Sequence[Comparison]) -> dict[str, list[Comparison]]:
    by_prompt: dict[str, list[Comparison]] = defaultdict(list)
    for c in comparisons:
        by_prompt[c.prompt_id].append(c)
    return by_prompt


def win_rate(
    comparisons: Sequence[Comparison],
    a: str,
    b: str,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> WinRate:
    """a's win rate over b, ties and inconsistent verdicts as half; the interval resamples
    prompts (each prompt's samples averaged first)."""
    mine = _oriented(comparisons, a, b)
    scores = [c.score for c in mine if c.score is not None]
    prompt_means = [
        float(np.mean(s)) if (s := [c.score for c in group if c.score is not None]) else None
        for group in _per_prompt(mine).values()
    ]
    interval = mean_interval(prompt_means, confidence, n_resamples, seed)
    return WinRate(
        a,
        b,
        wins=scores.count(1.0),
        ties=scores.count(0.5),
        losses=scores.count(0.0),
        missing=len(mine) - len(scores),
        rate=interval,
    )


def _logistic_fits(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Intercepts and slopes (R, 2) of R weighted logistic regressions of y (fractional
    outcomes, n) on x (n), one per row of weights (R, n), by Newton's method with a small
    ridge penalty; the log-likelihood is concave, so Newton from 0 converges."""
    design = np.stack([np.ones_like(x), x], axis=1)  # (n, 2)
    beta = np.zeros((weights.shape[0], 2))
    for _ in range(100):
        p = 1 / (1 + np.exp(-(beta @ design.T)))  # (R, n)
        gradient = (weights * (y - p)) @ design - LC_RIDGE * beta  # (R, 2)
        curvature = weights * p * (1 - p)  # (R, n)
        hessian = np.einsum("rn,ni,nj->rij", curvature, design, design)
        hessian += LC_RIDGE * np.eye(2)
        step = np.linalg.solve(hessian, gradient[..., None])[..., 0]
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    return beta


@dataclass(frozen=True)
class LengthControlled:
    rate: float | None  # predicted win rate at zero length difference
    low: float | None
    high: float | None
    raw_rate: float | None  # the plain win rate of the same comparisons, for contrast
    length_slope: float | None  # logit change per unit of tanh(difference / sd): > 0 likes length
    n: int
    note: str = ""  # why there is no rate


def length_controlled_win_rate(
    comparisons: Sequence[Comparison],
    a: str,
    b: str,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> LengthControlled:
    """a's win rate over b with the length difference regressed out (see the module doc);
    the interval refits on prompts resampled with replacement. Where one system is longer in
    every comparison, nothing was seen at zero difference: no rate, and a note saying so."""
    mine = [c for c in _oriented(comparisons, a, b) if c.score is not None]
    if not mine:
        return LengthControlled(None, None, None, None, None, 0, "no judged comparisons")
    y = np.array([c.score for c in mine])
    difference = np.array([c.length_difference for c in mine], dtype=float)
    if difference.min() > 0 or difference.max() < 0:
        longer = a if difference.min() > 0 else b
        note = f"{longer} is longer in every comparison: length and quality cannot be separated"
        return LengthControlled(None, None, None, float(y.mean()), None, len(y), note)
    spread = difference.std()
    x = np.tanh(difference / spread) if spread > 0 else np.zeros_like(difference)
    fit = _logistic_fits(x, y, np.ones((1, len(y))))[0]
    prompts = sorted({c.prompt_id for c in mine})
    index = {p: i for i, p in enumerate(prompts)}
    prompt_of = np.array([index[c.prompt_id] for c in mine])
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(prompts), size=(n_resamples, len(prompts)))
    times_drawn = np.stack([np.bincount(row, minlength=len(prompts)) for row in draws])
    fits = _logistic_fits(x, y, times_drawn[:, prompt_of].astype(float))
    tail = (1 - confidence) / 2
    low, high = np.quantile(1 / (1 + np.exp(-fits[:, 0])), [tail, 1 - tail])
    rate = float(1 / (1 + np.exp(-fit[0])))
    return LengthControlled(
        rate, min(float(low), rate), max(float(high), rate), float(y.mean()), float(fit[1]), len(y)
    )


def _bt_counts(
    comparisons: Sequence[Comparison], systems: Sequence[str], prompts: Sequence[str]
) -> np.ndarray:
    """wins[p, i, j]: how often system i beat system j on prompt p (ties half to each)."""
    s_index = {s: i for i, s in enumerate(systems)}
    p_index = {p: i for i, p in enumerate(prompts)}
    wins = np.zeros((len(prompts), len(systems), len(systems)))
    for c in comparisons:
        if c.score is None:
            continue
        p, i, j = p_index[c.prompt_id], s_index[c.first], s_index[c.second]
        wins[p, i, j] += c.score
        wins[p, j, i] += 1 - c.score
    return wins


def _bt_strengths(wins: np.ndarray) -> np.ndarray:
    """Bradley-Terry log-strengths (R, m), mean 0, from win counts (R, m, m) by MM, with
    BT_PRIOR_TIES virtual ties between every pair that met."""
    games = wins + wins.transpose(0, 2, 1)  # (R, m, m)
    met = games > 0
    wins = wins + met * BT_PRIOR_TIES / 2
    games = games + met * BT_PRIOR_TIES
    total_wins = wins.sum(axis=2)  # (R, m)
    strength = np.ones(wins.shape[:2])
    for _ in range(10_000):
        pair_sums = strength[:, :, None] + strength[:, None, :]  # p_i + p_j
        expected = (games / pair_sums).sum(axis=2)
        # a system with no games in a resample keeps strength 1 (it has no information)
        updated = np.where(expected > 0, total_wins / np.where(expected > 0, expected, 1), 1.0)
        updated /= np.exp(np.log(updated).mean(axis=1, keepdims=True))  # geometric mean 1
        change = np.abs(np.log(updated) - np.log(strength)).max()
        strength = updated
        if change < 1e-10:
            break
    return np.log(strength)


@dataclass(frozen=True)
class Rating:
    system: str
    rating: float  # Elo scale, anchored so the systems' mean is ELO_ANCHOR
    low: float
    high: float
    comparisons: int  # judged comparisons the system took part in


def bradley_terry(
    comparisons: Sequence[Comparison],
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> list[Rating]:
    """Bradley-Terry ratings of every system, best first, with percentile intervals from
    refits on prompts resampled with replacement."""
    judged = [c for c in comparisons if c.score is not None]
    systems = sorted({s for c in comparisons for s in (c.first, c.second)})
    prompts = sorted({c.prompt_id for c in judged})
    if not judged:
        return []
    per_prompt = _bt_counts(judged, systems, prompts)  # (P, m, m)
    point = _bt_strengths(per_prompt.sum(axis=0, keepdims=True))[0]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(prompts), size=(n_resamples, len(prompts)))
    times_drawn = np.stack([np.bincount(row, minlength=len(prompts)) for row in draws])
    resampled = _bt_strengths(np.einsum("rp,pij->rij", times_drawn, per_prompt))
    tail = (1 - confidence) / 2
    low, high = np.quantile(resampled, [tail, 1 - tail], axis=0)
    count = {s: sum(1 for c in judged if s in (c.first, c.second)) for s in systems}
    ratings = [
        Rating(
            system,
            float(ELO_ANCHOR + ELO_SCALE * point[i]),
            float(ELO_ANCHOR + ELO_SCALE * min(low[i], point[i])),
            float(ELO_ANCHOR + ELO_SCALE * max(high[i], point[i])),
            count[system],
        )
        for i, system in enumerate(systems)
    ]
    return sorted(ratings, key=lambda r: -r.rating)


def win_rate_matrix(
    comparisons: Sequence[Comparison], systems: Sequence[str], n_resamples: int = N_RESAMPLES
) -> dict[str, dict[str, WinRate]]:
    """matrix[a][b]: a's win rate over b, for every ordered pair of different systems."""
    return {
        a: {b: win_rate(comparisons, a, b, n_resamples=n_resamples) for b in systems if b != a}
        for a in systems
    }
