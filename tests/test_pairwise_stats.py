"""Pairwise statistics (judge.pairwise_stats) on outcomes small enough to work out by hand."""

import itertools
import math

import numpy as np
import pytest

from judge.pairwise_stats import (
    Comparison,
    bradley_terry,
    combine_orders,
    length_controlled_win_rate,
    position_consistency,
    win_rate,
    win_rate_matrix,
)


@pytest.mark.parametrize(
    ("forward", "backward", "outcome"),
    [
        ("A", "B", (1.0, True)),  # first system shown as A wins, and as B wins again
        ("B", "A", (0.0, True)),
        ("tie", "tie", (0.5, True)),
        ("A", "A", (0.5, False)),  # the position won both times: a tie, inconsistent
        ("B", "B", (0.5, False)),
        ("A", "tie", (0.5, False)),
        ("tie", "B", (0.5, False)),
        (None, "A", (None, None)),
        ("B", None, (None, None)),
    ],
)
def test_two_orders_combine_into_one_outcome(forward, backward, outcome):
    assert combine_orders(forward, backward) == outcome


def _judged(first: str, second: str, prompt: str, forward, backward, length=0.0) -> Comparison:
    score, consistent = combine_orders(forward, backward)
    return Comparison(prompt, first, second, score, consistent, length)


def test_a_judge_that_always_prefers_position_one_is_all_ties_and_fully_inconsistent():
    comparisons = [
        _judged(x, y, f"p{i}", "A", "A")  # whoever is shown first wins, in both orders
        for i in range(20)
        for x, y in [("m0", "m50"), ("m0", "m300"), ("m50", "m300")]
    ]
    consistency = position_consistency(comparisons)
    assert (consistency.pairs, consistency.inconsistent, consistency.rate) == (60, 60, 1.0)
    rate = win_rate(comparisons, "m300", "m0")
    assert (rate.wins, rate.ties, rate.losses) == (0, 20, 0)
    assert (rate.rate.mean, rate.rate.low, rate.rate.high) == (0.5, 0.5, 0.5)
    ratings = bradley_terry(comparisons)
    assert all(r.rating == pytest.approx(1000.0) for r in ratings)


def test_win_rate_counts_ties_as_half_and_flips_orientation():
    comparisons = [
        Comparison("p1", "a", "b", 1.0, True),
        Comparison("p2", "b", "a", 0.0, True),  # stored the other way round: a won
        Comparison("p3", "a", "b", 0.5, False),
        Comparison("p4", "b", "a", 1.0, True),
        Comparison("p5", "a", "b", None, None),  # a verdict missing
    ]
    rate = win_rate(comparisons, "a", "b")
    assert (rate.wins, rate.ties, rate.losses, rate.missing) == (2, 1, 1, 1)
    assert rate.rate.mean == pytest.approx((1 + 1 + 0.5 + 0) / 4)
    assert rate.rate.low <= rate.rate.mean <= rate.rate.high
    assert win_rate(comparisons, "b", "a").rate.mean == pytest.approx(1 - 0.625)
    assert position_consistency(comparisons).missing == 1


def test_samples_of_one_prompt_are_averaged_before_prompts_are_weighed():
    comparisons = [
        Comparison("p1", "a", "b", 1.0, True),
        Comparison("p1", "a", "b", 0.0, True),  # a second sample of the same prompt
        Comparison("p2", "a", "b", 1.0, True),
    ]
    rate = win_rate(comparisons, "a", "b")
    assert rate.rate.mean == pytest.approx((0.5 + 1.0) / 2) and rate.rate.n == 2


def test_length_controlled_win_rate_removes_a_taste_for_length():
    # a is longer on 80 prompts and wins 90% of them, shorter on 20 and wins 10% of them:
    # the judge follows length, not a. Raw win rate 0.8 * 0.9 + 0.2 * 0.1 = 0.74. With one
    # length difference either way, the fit is logit p = b0 +- b1 c with p = 0.9 and 0.1, so
    # b0 = 0 and the win rate at zero difference is 0.5.
    comparisons = [
        Comparison(f"long{i}", "a", "b", float(i % 10 != 0), True, +40.0) for i in range(80)
    ] + [Comparison(f"short{i}", "a", "b", float(i % 10 == 0), True, -40.0) for i in range(20)]
    lc = length_controlled_win_rate(comparisons, "a", "b", n_resamples=300)
    assert lc.raw_rate == pytest.approx(0.74)
    assert lc.rate == pytest.approx(0.5, abs=1e-3) and lc.length_slope > 0
    assert lc.low <= lc.rate <= lc.high and lc.n == 100
    # the same comparisons seen from b: its length-controlled rate is the complement
    assert length_controlled_win_rate(comparisons, "b", "a", n_resamples=300).rate == (
        pytest.approx(1 - lc.rate, abs=1e-6)
    )


def test_length_controlled_win_rate_equals_the_raw_one_without_a_length_effect():
    # a wins 7 of 10 when longer and 7 of 10 when shorter: slope 0, rate 0.7
    comparisons = [
        Comparison(f"p{i}{sign}", "a", "b", float(i < 7), True, sign * 25.0)
        for i in range(10)
        for sign in (1, -1)
    ]
    lc = length_controlled_win_rate(comparisons, "a", "b", n_resamples=300)
    assert lc.rate == pytest.approx(0.7, abs=1e-4) and lc.raw_rate == pytest.approx(0.7)
    assert lc.length_slope == pytest.approx(0.0, abs=1e-6)


def test_bradley_terry_of_two_systems_is_the_log_odds_of_their_wins():
    # a beats b on 7 prompts of 10; with one virtual tie (half a win each) the odds are
    # 7.5 : 3.5, so a is 400 log10(7.5 / 3.5) points above b, the two centred on 1000.
    comparisons = [Comparison(f"p{i}", "a", "b", float(i < 7), True) for i in range(10)]
    a, b = bradley_terry(comparisons, n_resamples=300)
    gap = 400 * math.log10(7.5 / 3.5)
    assert (a.system, b.system) == ("a", "b")
    assert a.rating == pytest.approx(1000 + gap / 2) and b.rating == pytest.approx(1000 - gap / 2)
    assert a.low <= a.rating <= a.high and a.comparisons == 10


def test_bradley_terry_recovers_a_known_order_with_separate_intervals():
    # three systems 200 Elo points apart, 300 prompts, outcomes drawn from the model itself
    truth = {"m0": 800.0, "m50": 1000.0, "m300": 1200.0}
    rng = np.random.default_rng(7)
    comparisons = []
    for p in range(300):
        for x, y in [("m0", "m50"), ("m0", "m300"), ("m50", "m300")]:
            p_x = 1 / (1 + 10 ** ((truth[y] - truth[x]) / 400))
            comparisons.append(Comparison(f"p{p}", x, y, float(rng.random() < p_x), True))
    ratings = bradley_terry(comparisons, n_resamples=500)
    assert [r.system for r in ratings] == ["m300", "m50", "m0"]
    for better, worse in itertools.pairwise(ratings):
        assert better.low > worse.high  # intervals do not overlap
    for r in ratings:  # each true rating lies in (or within a few points of) its interval
        assert r.low - 15 <= truth[r.system] <= r.high + 15
    assert sum(r.rating for r in ratings) / 3 == pytest.approx(1000.0)


def test_a_strict_order_is_recovered_and_stays_finite():
    comparisons = [
        Comparison(f"p{i}", x, y, 1.0, True)
        for i in range(30)
        for x, y in [("a", "b"), ("a", "c"), ("b", "c")]
    ]
    ratings = bradley_terry(comparisons, n_resamples=200)
    assert [r.system for r in ratings] == ["a", "b", "c"]
    assert all(math.isfinite(r.rating) for r in ratings)
    matrix = win_rate_matrix(comparisons, ["a", "b", "c"], n_resamples=200)
    assert matrix["a"]["c"].rate.mean == 1.0 and matrix["c"]["b"].rate.mean == 0.0


def test_no_judged_comparison_gives_no_ratings_and_no_rates():
    comparisons = [Comparison("p1", "a", "b", None, None)]
    assert bradley_terry(comparisons) == []
    assert win_rate(comparisons, "a", "b").rate.mean is None
    assert length_controlled_win_rate(comparisons, "a", "b").rate is None
    assert position_consistency(comparisons).rate is None
