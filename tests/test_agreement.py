"""Agreement statistics (judge.agreement) against hand arithmetic, the published example of
Krippendorff's alpha, and scipy, scikit-learn and the `krippendorff` package."""

import krippendorff
import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import cohen_kappa_score

from judge.agreement import (
    krippendorff_alpha,
    panel_agreement,
    panel_mean,
    quadratic_kappa,
    self_consistency,
    spearman,
)


def test_spearman_by_hand():
    # no ties: d = (-1, 1, -1, 1), rho = 1 - 6 * 4 / (4 * 15) = 0.6
    result = spearman([1, 2, 3, 4], [2, 1, 4, 3], n_resamples=200)
    assert result.value == pytest.approx(0.6) and result.n == 4
    assert spearman([1, 2, 3], [3, 2, 1]).value == pytest.approx(-1.0)


def test_quadratic_kappa_by_hand():
    # mean squared disagreement (0 + 0 + 1) / 3 = 1/3; by chance, over every (x_i, y_j):
    # var x + var y + (mean x - mean y)^2 = 6/9 + 14/9 + 1/9 = 7/3; kappa = 1 - (1/3)/(7/3)
    assert quadratic_kappa([1, 2, 3], [1, 2, 4]).value == pytest.approx(6 / 7)
    assert quadratic_kappa([3, 5, 8], [3, 5, 8]).value == pytest.approx(1.0)


# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the example with four
# observers, twelve units and missing values; alpha is 0.743 nominal, 0.815 ordinal, 0.849
# interval.
KRIPPENDORFF_EXAMPLE = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


@pytest.mark.parametrize(
    ("level", "published"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)]
)
def test_krippendorff_alpha_reproduces_the_published_example(level, published):
    result = krippendorff_alpha(KRIPPENDORFF_EXAMPLE, level, n_resamples=200)
    assert result.value == pytest.approx(published, abs=5e-4)
    assert result.n == 11  # the last unit has one value only: nothing to agree with
    assert result.low <= result.value <= result.high


def _random_table(seed: int, raters: int, items: int) -> list[list[int | None]]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, 11, items)
    table = [np.clip(truth + rng.integers(-2, 3, items), 1, 10).tolist() for _ in range(raters)]
    for row in table:
        for i in rng.choice(items, items // 6, replace=False):
            row[i] = None
    return table


@pytest.mark.parametrize("seed", range(4))
def test_agreement_matches_scipy_scikit_learn_and_the_krippendorff_package(seed):
    table = _random_table(seed, raters=3, items=40)
    data = np.array([[np.nan if v is None else v for v in row] for row in table], float)
    for level in ("ordinal", "interval", "nominal"):
        ours = krippendorff_alpha(table, level, n_resamples=50).value
        theirs = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
        assert ours == pytest.approx(theirs, abs=1e-12)
    both = ~np.isnan(data[:2]).any(axis=0)
    x, y = data[0, both].astype(int), data[1, both].astype(int)
    assert spearman(table[0], table[1], n_resamples=50).value == pytest.approx(
        spearmanr(x, y).statistic, abs=1e-12
    )
    # labels 1..10 given, so scikit-learn weighs by the scores, as kahani does
    sklearn = cohen_kappa_score(x, y, weights="quadratic", labels=list(range(1, 11)))
    assert quadratic_kappa(table[0], table[1], n_resamples=50).value == pytest.approx(sklearn)


def test_intervals_contain_the_value_and_narrow_with_more_items():
    small = spearman(*_random_table(1, 2, 20), n_resamples=500)
    large = spearman(*_random_table(1, 2, 400), n_resamples=500)
    for result in (small, large):
        assert result.low <= result.value <= result.high
    assert large.high - large.low < small.high - small.low


def test_undefined_agreement_is_none_not_a_number():
    assert spearman([5, 5, 5], [1, 2, 3]).value is None  # one judge gave one score only
    assert quadratic_kappa([5, 5], [5, 5]).value is None
    assert krippendorff_alpha([[7, 7, 7], [7, 7, 7]]).value is None
    assert krippendorff_alpha([[1, None], [None, 2]]).value is None  # no item scored twice
    with pytest.raises(ValueError, match="differ in length"):
        spearman([1, 2], [1, 2, 3])


def test_self_consistency_is_one_for_a_deterministic_judge_and_lower_for_a_noisy_one():
    rng = np.random.default_rng(3)
    truth = rng.integers(1, 11, 60).tolist()
    assert self_consistency([truth, truth, truth], n_resamples=100).value == pytest.approx(1.0)
    noisy = [np.clip(np.array(truth) + rng.integers(-3, 4, 60), 1, 10).tolist() for _ in range(3)]
    value = self_consistency(noisy, n_resamples=100).value
    assert 0.3 < value < 0.95
    random_judge = [rng.integers(1, 11, 60).tolist() for _ in range(3)]
    assert abs(self_consistency(random_judge, n_resamples=100).value) < 0.2


def test_panel_agreement_covers_every_pair_and_the_panel_mean_skips_missing_scores():
    by_judge = {"gpt": [7, 8, 3, None], "claude": [6, 8, 2, 5], "llama": [9, 9, 5, 6]}
    panel = panel_agreement(by_judge, n_resamples=100)
    assert [(p.a, p.b) for p in panel.pairs] == [
        ("gpt", "claude"), ("gpt", "llama"), ("claude", "llama"),
    ]  # fmt: skip
    assert panel.pairs[0].spearman.n == 3 and panel.pairs[1].quadratic_kappa.n == 3
    assert panel.krippendorff_alpha.n == 4
    assert panel_mean(by_judge) == pytest.approx([22 / 3, 25 / 3, 10 / 3, 5.5])
    assert panel_mean({"a": [None], "b": [None]}) == [None]
