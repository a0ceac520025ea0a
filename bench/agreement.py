"""Speed of the agreement statistics' bootstrap intervals (judge/agreement.py) for a panel of
judges, against the plain bootstrap they replace, side by side in the same run.

Baseline ("loop"): what a bootstrap usually is, and what judge/agreement.py did before: for
each of 2,000 resamples, draw items with replacement, build the resampled matrix and compute
the statistic from scratch. Ours ("weighted"): a resample is a weighting of the items (an item
drawn k times weighs k); Krippendorff's alpha sums per-item coincidence matrices with those
weights, Spearman ranks and kappa's moments are weighted sums, all resamples at once. The
same draws give the same intervals; they are checked equal.

Scores are synthetic: two judges scoring N items 1-10, the second within one point of the
first, a few scores missing.

    python bench/agreement.py
    python bench/agreement.py --items 2000
"""

import argparse
import random
import time

import numpy as np

from judge.agreement import (
    N_RESAMPLES,
    SEED,
    _alpha_of,
    _both_present,
    _coincidences,
    _interval,
    _matrix,
    _quadratic_kappa,
    _spearman,
    krippendorff_alpha,
    quadratic_kappa,
    spearman,
)


def scores(items: int, seed: int = 0) -> tuple[list, list]:
    rng = random.Random(seed)
    a = [rng.randint(1, 10) for _ in range(items)]
    b = [min(10, max(1, x + rng.choice((-1, 0, 0, 1)))) for x in a]
    for i in rng.sample(range(items), items // 50):
        b[i] = None
    return a, b


def loop_interval(statistic, data: np.ndarray, value: float):
    """The plain bootstrap: every resample's matrix built and its statistic computed anew,
    with the same draws as judge.agreement."""
    items = data.shape[1]
    rng = np.random.default_rng(SEED)
    draws = rng.integers(0, items, size=(N_RESAMPLES, items))
    resampled = np.array([statistic(data[:, row]) for row in draws])
    return _interval(value, resampled, 0.95, items)


def loop_alpha(data: np.ndarray) -> float:
    per_item, values = _coincidences(data)
    return float(_alpha_of(per_item.sum(axis=0)[None], values, "ordinal")[0])


def pairwise_statistic(statistic):
    return lambda data: float(statistic(data, np.ones((1, data.shape[1])))[0])


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    args = parser.parse_args()
    a, b = scores(args.items)
    both = _both_present(a, b)
    alpha_data = _matrix([a, b])
    alpha_data = alpha_data[:, (~np.isnan(alpha_data)).sum(axis=0) >= 2]
    cases = [
        (
            "krippendorff alpha",
            lambda: krippendorff_alpha([a, b]),
            lambda value: loop_interval(loop_alpha, alpha_data, value),
        ),
        (
            "spearman",
            lambda: spearman(a, b),
            lambda value: loop_interval(pairwise_statistic(_spearman), both, value),
        ),
        (
            "quadratic kappa",
            lambda: quadratic_kappa(a, b),
            lambda value: loop_interval(pairwise_statistic(_quadratic_kappa), both, value),
        ),
    ]
    print(f"{args.items:,} items, 2 judges, {N_RESAMPLES:,} resamples")
    print(f"{'statistic':<20} {'loop s':>8} {'weighted s':>11} {'speed-up':>9}  interval")
    for name, ours, baseline in cases:
        ours_s, found = timed(ours)
        base_s, expected = timed(lambda found=found, baseline=baseline: baseline(found.value))
        same = np.allclose(
            [found.low, found.high], [expected.low, expected.high], rtol=0, atol=1e-9
        )
        print(
            f"{name:<20} {base_s:8.3f} {ours_s:11.3f} {base_s / ours_s:8.1f}x  "
            f"{found.value:.4f} [{found.low:.4f}, {found.high:.4f}]"
            + ("" if same else f"  DIFFERS from the loop: [{expected.low}, {expected.high}]")
        )


if __name__ == "__main__":
    main()
