"""Rank aggregation over several metrics: sum of ranks (TEG-NAS) and Borda count (NTK-score), with ties.

A combination is not computed per arch but over a set of scored archs; ``COMBINATIONS`` names the ones a config may
ask for next to ordinary metrics (``metric.names: [tegnas]``), with their components and rule.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from scipy.stats import rankdata

from ntkexp.metrics.base import METRICS, oriented_for_ranking

COMBINATIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "tegnas": (("cond", "linear_regions", "ntk_mse"), "sum_of_ranks"),
    "ntk_score": (("s_t", "s_e", "s_g"), "borda"),
}


def direction_of(name: str) -> int:
    """+1 for combinations (a higher combined rank is better), else the metric's declared direction."""
    return 1 if name in COMBINATIONS else METRICS.get(name).direction


def ranks(values: np.ndarray, direction: int, ties: str = "average") -> np.ndarray:
    """1 = worst ... n = best, after orienting by ``direction``; undefined values rank worst."""
    return rankdata(oriented_for_ranking(values, direction), method=ties)


def sum_of_ranks(columns: Mapping[str, np.ndarray], ties: str = "average") -> np.ndarray:
    """Sum over metrics of each arch's rank (higher is better)."""
    return np.sum([ranks(v, METRICS.get(n).direction, ties) for n, v in columns.items()], axis=0)


def borda_count(columns: Mapping[str, np.ndarray], ties: str = "average") -> np.ndarray:
    """Borda points: per metric, the number of archs an arch beats (a tie counts half with ``average``, nothing with
    ``min``), summed over metrics (higher is better)."""
    return np.sum([ranks(v, METRICS.get(n).direction, ties) - 1.0 for n, v in columns.items()], axis=0)


def combine(name: str, columns: Mapping[str, np.ndarray]) -> np.ndarray:
    components, rule = COMBINATIONS[name]
    picked = {c: np.asarray(columns[c], dtype=np.float64) for c in components}
    return sum_of_ranks(picked) if rule == "sum_of_ranks" else borda_count(picked)


def expand(names: list[str]) -> tuple[list[str], list[str]]:
    """(per-arch metrics to compute, combinations to form) for the requested names."""
    metrics: list[str] = []
    combos: list[str] = []
    for name in names:
        if name in COMBINATIONS:
            combos.append(name)
            metrics.extend(c for c in COMBINATIONS[name][0] if c not in metrics)
        else:
            METRICS.get(name)
            if name not in metrics:
                metrics.append(name)
    return metrics, combos
