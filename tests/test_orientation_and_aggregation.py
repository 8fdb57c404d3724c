"""Orientation of smaller-is-better metrics, aggregation over seeds, and which decile is P1: each against numbers
worked out by hand or by scipy on the raw values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ntkexp.scoring.selection import decile_pool
from ntkexp.stats import bootstrap_interval, correlate
from ntkexp.tables import aggregate


def test_a_smaller_is_better_metric_is_oriented_before_ranking() -> None:
    accuracy = np.array([90.0, 80.0, 70.0, 60.0, 50.0])
    cond = np.array([1.0, 2.0, 3.0, 5.0, 4.0])  # a condition number: smaller is better, near-perfectly so
    out = correlate(cond, accuracy, direction=-1, top_k=[0.4])
    expected_tau = stats.kendalltau(-cond, accuracy).statistic
    assert expected_tau > 0.7
    assert out["kendall_tau"] == pytest.approx(expected_tau)
    assert out["spearman_rho"] == pytest.approx(stats.spearmanr(-cond, accuracy).statistic)
    assert out["top0.4_precision"] == 1.0  # the two smallest values are the two most accurate archs
    flipped = correlate(cond, accuracy, direction=1, top_k=[0.4])
    assert flipped["kendall_tau"] == pytest.approx(-expected_tau) and flipped["top0.4_precision"] == 0.0
    rng = np.random.default_rng(0)
    acc40 = rng.uniform(50, 95, 40)
    cond40 = 100 - acc40 + rng.normal(0, 5, 40)  # smaller is better
    lo, hi = bootstrap_interval(cond40, acc40, -1, seed=0)
    tau = correlate(cond40, acc40, -1, [])["kendall_tau"]
    assert 0 < lo <= tau <= hi  # the interval of the oriented score, around its tau, on the positive side
    assert bootstrap_interval(cond40, acc40, 1, seed=0) == pytest.approx((-hi, -lo))


def test_aggregation_over_seeds_is_the_mean_and_sample_std() -> None:
    frame = pd.DataFrame({"metric": ["lga"] * 3 + ["ncn"] * 2, "kendall_tau": [0.1, 0.2, 0.6, 0.5, 0.5]})
    table = aggregate(frame, ["metric"], ["kendall_tau"]).set_index("metric")
    assert table.at["lga", "kendall_tau_mean"] == pytest.approx(0.3)  # not the median (0.2)
    assert table.at["lga", "kendall_tau_std"] == pytest.approx(np.std([0.1, 0.2, 0.6], ddof=1))
    assert table.at["lga", "kendall_tau_n"] == 3 and table.at["ncn", "kendall_tau_std"] == 0.0


def test_the_top_decile_is_p1() -> None:
    accuracy = pd.Series(np.arange(100, dtype=float), index=[f"a{i}" for i in range(100)])
    p1, p10 = decile_pool(accuracy, 1), decile_pool(accuracy, 10)
    assert set(p1) == {f"a{i}" for i in range(90, 100)}  # the best tenth
    assert set(p10) == {f"a{i}" for i in range(10)}
    with pytest.raises(ValueError, match="between 1 and"):
        decile_pool(accuracy, 11)


def test_top_k_of_a_metric_that_ranks_nothing_is_undefined() -> None:
    accuracy = np.array([90.0, 80.0, 70.0, 60.0])
    for values in (np.full(4, np.nan), np.full(4, 3.0)):
        out = correlate(values, accuracy, direction=1, top_k=[0.25, 0.5])
        assert np.isnan(out["top0.25_precision"]) and np.isnan(out["top0.5_precision"]) and np.isnan(out["kendall_tau"])


def test_the_expected_pick_of_a_guided_random_search_equals_enumerating_every_pool() -> None:
    """expected_best_of is exact: the mean, over every pool of k of the n archs, of the accuracy of the pool's
    highest-scoring arch (archs tied on the score, undefined ones among them, picked at random: their mean)."""
    import itertools

    from ntkexp.stats import best_of_interval, expected_best_of

    rng = np.random.default_rng(4)
    score = rng.normal(size=8)
    score[[1, 6]] = score[3]  # a three-way tie
    score[[0, 5]] = -np.inf  # undefined: worst, tied
    accuracy = rng.uniform(70, 95, size=8)
    for k in (1, 3, 8):
        picks = []
        for pool in itertools.combinations(range(8), k):
            best = max(score[list(pool)])
            picks.append(np.mean([accuracy[i] for i in pool if score[i] == best]))
        assert expected_best_of(score, accuracy, k) == pytest.approx(np.mean(picks), abs=1e-12)
    assert expected_best_of(accuracy, accuracy, 1) == pytest.approx(accuracy.mean())  # one arch: a random one
    point, lo, hi = best_of_interval(score, accuracy, 3, baseline=score, n_resamples=50)
    assert point == lo == hi == 0.0  # paired: the same score against itself differs by nothing in every resample
    with pytest.raises(ValueError, match="1 <= k"):
        expected_best_of(score, accuracy, 9)
