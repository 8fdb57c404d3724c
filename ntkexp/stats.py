"""Rank statistics of a metric against accuracy: Kendall tau, Spearman rho (scipy.stats), top-k precision, and a
bootstrap interval over the archs that says what their number can resolve."""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any, Callable

import numpy as np
from ntkexp.metrics import oriented


def _scipy_stats() -> Any:
    """``scipy.stats``, imported on first use (it takes most of a second; ``ntkexp --help`` never needs it)."""
    from scipy import stats

    return stats


def top_k_precision(score: np.ndarray, accuracy: np.ndarray, fraction: float) -> float:
    """Share of the top ``fraction`` archs by ``score`` that are also in the top ``fraction`` by accuracy."""
    n = len(score)
    k = max(1, int(round(fraction * n)))
    by_score = set(np.argsort(-score, kind="stable")[:k].tolist())
    by_acc = set(np.argsort(-accuracy, kind="stable")[:k].tolist())
    return len(by_score & by_acc) / k


def correlate(values: np.ndarray, accuracy: np.ndarray, direction: int, top_k: list[float]) -> dict[str, Any]:
    """Rank correlation of the direction-oriented score with accuracy; undefined scores rank worst (see metrics)."""
    values, score, accuracy = _paired(values, accuracy, direction)
    out: dict[str, Any] = {"n": int(len(values)), "n_undefined": int(np.sum(~np.isfinite(values)))}
    constant = len(values) == 0 or bool(np.all(score == score[0]))  # all undefined, or all alike: no ranking
    if len(values) < 2 or constant:
        out.update(kendall_tau=float("nan"), spearman_rho=float("nan"), kendall_p=float("nan"), spearman_p=float("nan"))
    else:
        ranked = _finite_ranks(score)
        tau = _scipy_stats().kendalltau(ranked, accuracy)
        rho = _scipy_stats().spearmanr(ranked, accuracy)
        out.update(kendall_tau=float(tau.statistic), kendall_p=float(tau.pvalue),
                   spearman_rho=float(rho.statistic), spearman_p=float(rho.pvalue))
    for frac in top_k:
        out[f"top{frac:g}_precision"] = float("nan") if constant else top_k_precision(score, accuracy, frac)
    return out


def _paired(values: np.ndarray, accuracy: np.ndarray, direction: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(raw values, oriented scores, accuracies) of the archs that have an accuracy."""
    values = np.asarray(values, dtype=np.float64)
    accuracy = np.asarray(accuracy, dtype=np.float64)
    keep = ~np.isnan(accuracy)
    return values[keep], oriented(values[keep], direction), accuracy[keep]


def _finite_ranks(score: np.ndarray) -> np.ndarray:
    """``score`` with +-inf mapped to finite sentinels beyond the data (scipy ranks them like any number; this makes
    the convention explicit)."""
    finite = score[np.isfinite(score)]
    lo, hi = (finite.min(), finite.max()) if len(finite) else (0.0, 0.0)
    return np.where(score == -np.inf, lo - 1.0, np.where(score == np.inf, hi + 1.0, score))


STATISTICS = {"kendall_tau": lambda a, b: _scipy_stats().kendalltau(a, b).statistic,
              "spearman_rho": lambda a, b: _scipy_stats().spearmanr(a, b).statistic}


def percentile_bootstrap(statistic: Callable[[np.ndarray], float], n: int, confidence: float = 0.95,
                         n_resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """The percentile interval of ``statistic(idx)`` over ``n_resamples`` resamples ``idx`` of ``n`` archs drawn with
    replacement (seeded); resamples where it is undefined are left out, which ``scipy.stats.bootstrap`` cannot do.
    NaNs when no resample is defined."""
    draws = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on constant resamples; they are dropped below
        stat = np.array([statistic(i) for i in draws], dtype=np.float64)
    stat = stat[np.isfinite(stat)]
    if not len(stat):
        return float("nan"), float("nan")
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(stat, [tail, 100 - tail])
    return float(lo), float(hi)


def bootstrap_interval(values: np.ndarray, accuracy: np.ndarray, direction: int, statistic: str = "kendall_tau",
                       confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` (``kendall_tau`` or ``spearman_rho``, by scipy.stats) of the
    oriented score against accuracy, resampling archs with replacement. Resamples where the statistic is undefined
    (every resampled score or accuracy equal: likely with a handful of archs) are left out, which
    ``scipy.stats.bootstrap`` cannot do; NaN when fewer than 3 archs or no resample is defined."""
    _, score, acc = _paired(values, accuracy, direction)
    if len(score) < 3 or np.all(score == score[0]):
        return float("nan"), float("nan")
    ranked, fn = _finite_ranks(score), STATISTICS[statistic]
    return percentile_bootstrap(lambda i: fn(ranked[i], acc[i]), len(score), confidence, n_resamples, seed)


def correlation_table(frame: Any, directions: dict[str, int], top_k: list[float]) -> dict[str, dict[str, Any]]:
    """Per metric column of ``frame`` named in ``directions``: its direction and :func:`correlate` with accuracy."""
    return {name: {"direction": d, **correlate(frame[name].to_numpy(), frame["accuracy"].to_numpy(), d, top_k)}
            for name, d in directions.items()}


def paired_bootstrap_difference(before: np.ndarray, after: np.ndarray, accuracy: np.ndarray, direction: int,
                                statistic: str = "kendall_tau", confidence: float = 0.95, n_resamples: int = 2000,
                                seed: int = 0) -> tuple[float, float, float]:
    """(point, lo, hi): statistic(after) - statistic(before) of two scores of the same archs against their accuracy,
    with a percentile bootstrap interval that resamples the archs once for both (a paired interval: the archs'
    shared difficulty cancels, which two separate intervals cannot show). Undefined scores rank worst, as in
    :func:`correlate`; archs without an accuracy are left out; resamples where either statistic is undefined are
    dropped. NaNs when fewer than 3 archs or either score is constant."""
    before, after, accuracy = (np.asarray(a, dtype=np.float64) for a in (before, after, accuracy))
    if not len(before) == len(after) == len(accuracy):
        raise ValueError(f"paired scores need one value per arch each, got {len(before)}, {len(after)} and "
                         f"{len(accuracy)}")
    _, score_a, acc = _paired(before, accuracy, direction)
    _, score_b, _ = _paired(after, accuracy, direction)
    nan = (float("nan"),) * 3
    if len(acc) < 3 or np.all(score_a == score_a[0]) or np.all(score_b == score_b[0]):
        return nan
    ranked_a, ranked_b, fn = _finite_ranks(score_a), _finite_ranks(score_b), STATISTICS[statistic]
    point = float(fn(ranked_b, acc) - fn(ranked_a, acc))
    lo, hi = percentile_bootstrap(lambda i: fn(ranked_b[i], acc[i]) - fn(ranked_a[i], acc[i]), len(acc), confidence,
                                  n_resamples, seed)
    return nan if np.isnan(lo) else (point, lo, hi)


@functools.lru_cache(maxsize=64)
def _pick_weights(n: int, k: int) -> np.ndarray:
    """P(the arch at position r of n sorted by score is the best of a uniform pool of k) = C(n-1-r, k-1) / C(n, k)."""
    total = math.comb(n, k)
    return np.array([math.comb(n - 1 - r, k - 1) / total for r in range(n)])


def expected_best_of(score: np.ndarray, accuracy: np.ndarray, k: int) -> float:
    """The expected accuracy that a random search of ``k`` archs guided by ``score`` finds: the pool drawn uniformly
    without replacement from the archs given, the highest-scoring one picked. ``score`` is oriented (higher is better;
    undefined already -inf, see :func:`~ntkexp.metrics.oriented`). Exact, no sampling: the arch at position r of the
    n sorted by score is the pool's best with probability C(n-1-r, k-1) / C(n, k); archs tied on the score share the
    probability of their group and the pick among them is at random (their mean accuracy)."""
    score, accuracy = np.asarray(score, dtype=np.float64), np.asarray(accuracy, dtype=np.float64)
    n = len(score)
    if not 1 <= k <= n or len(accuracy) != n:
        raise ValueError(f"a search of {k} archs needs 1 <= k <= the {n} archs, each with an accuracy")
    order = np.argsort(-score, kind="stable")
    s, a, w = score[order], accuracy[order], _pick_weights(n, k)
    group = np.cumsum(np.r_[True, s[1:] != s[:-1]]) - 1  # runs of equal scores
    expected = np.sum(np.bincount(group, weights=w) * np.bincount(group, weights=a) / np.bincount(group))
    return float(expected)


def best_of_interval(score: np.ndarray, accuracy: np.ndarray, k: int, baseline: np.ndarray | None = None,
                     confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(point, lo, hi): :func:`expected_best_of` of ``score`` (minus that of ``baseline`` on the same archs: a paired
    difference) with a percentile bootstrap interval that resamples the archs (the same resample for both)."""
    score, accuracy = np.asarray(score, dtype=np.float64), np.asarray(accuracy, dtype=np.float64)
    base = None if baseline is None else np.asarray(baseline, dtype=np.float64)

    def value(idx: np.ndarray) -> float:
        found = expected_best_of(score[idx], accuracy[idx], k)
        return found if base is None else found - expected_best_of(base[idx], accuracy[idx], k)

    point = value(np.arange(len(score)))
    return (point, *percentile_bootstrap(value, len(score), confidence, n_resamples, seed))


def mean_std_se(values: np.ndarray) -> tuple[float, float, float, int]:
    """(mean, std, standard error of the mean, n) of the finite ``values`` (std and SE NaN below 2 values)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    n = len(values)
    if not n:
        return float("nan"), float("nan"), float("nan"), 0
    std = float(np.std(values, ddof=1)) if n > 1 else float("nan")
    return float(np.mean(values)), std, std / math.sqrt(n) if n > 1 else float("nan"), n


def difference_in_se(mean: float, std: float, n: int, paper: float, paper_std: float, paper_n: int) -> float:
    """(ours - published) over the standard error of the difference of the two means (our std and n, the published
    std over its ``paper_n`` runs); NaN below 2 values of ours or with no spread."""
    se = math.sqrt(std ** 2 / n + paper_std ** 2 / paper_n) if n > 1 else float("nan")
    return (mean - paper) / se if se and np.isfinite(se) else float("nan")
