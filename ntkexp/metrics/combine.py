"""Rank aggregation over several metrics: sum of ranks (TEG-NAS) and Borda count (NTK-score), with ties.

A combination is not computed per arch but over a set of scored archs. It is registered next to its components
(``register_combination`` in ``tegnas.py`` and ``ntk_score.py``) and may be asked for like a metric
(``metric.names: [tegnas]``). The name ``all`` asks for every registered metric and combination.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ntkexp.metrics.base import METRICS, Metric, oriented
from ntkexp.registry import PLUGIN_HINT, Registry

RULES = ("sum_of_ranks", "borda")
ALL = "all"


@dataclass(frozen=True)
class Combination:
    """A rank combination of per-arch metrics; higher combined values are better."""

    name: str
    components: tuple[str, ...]
    rule: str
    direction: int = 1
    log_axis: bool = False
    keep_infinite: bool = False


COMBINATIONS: Registry[Combination] = Registry("metric combination")


def register_combination(name: str, components: tuple[str, ...], rule: str) -> Combination:
    if rule not in RULES:
        raise ValueError(f"combination {name!r}: rule must be one of {RULES}, got {rule!r}")
    if name in METRICS:
        raise ValueError(f"combination {name!r} has the name of a metric")
    return COMBINATIONS.register(name, Combination(name, tuple(components), rule))


def traits(name: str) -> Combination | Metric:
    """The registered metric or combination called ``name`` (both carry ``direction``, ``log_axis`` and
    ``keep_infinite``)."""
    return COMBINATIONS.get(name) if name in COMBINATIONS else METRICS.get(name)


def direction_of(name: str) -> int:
    """+1 for combinations (a higher combined rank is better), else the metric's declared direction."""
    return int(traits(name).direction)


def ranks(values: np.ndarray, direction: int, ties: str = "average") -> np.ndarray:
    """1 = worst ... n = best, after orienting by ``direction``; undefined values rank worst."""
    from scipy.stats import rankdata  # scipy.stats takes most of a second to import: loaded when ranking

    return rankdata(oriented(values, direction), method=ties)


def sum_of_ranks(columns: Mapping[str, np.ndarray], ties: str = "average") -> np.ndarray:
    """Sum over metrics of each arch's rank (higher is better)."""
    return np.sum([ranks(v, METRICS.get(n).direction, ties) for n, v in columns.items()], axis=0)


def borda_count(columns: Mapping[str, np.ndarray], ties: str = "average") -> np.ndarray:
    """Borda points: per metric, the number of archs an arch beats (a tie counts half with ``average``, nothing with
    ``min``), summed over metrics (higher is better)."""
    return np.sum([ranks(v, METRICS.get(n).direction, ties) - 1.0 for n, v in columns.items()], axis=0)


def combine(name: str, columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """The combination ``name`` over a set of archs, from its components' columns."""
    combo = COMBINATIONS.get(name)
    picked = {c: np.asarray(columns[c], dtype=np.float64) for c in combo.components}
    return sum_of_ranks(picked) if combo.rule == "sum_of_ranks" else borda_count(picked)


@dataclass(frozen=True)
class MetricSelection:
    """What a run computes: per-arch ``metrics`` (each once, in order) and the ``combinations`` formed over the
    scored set; ``primary`` is the first name asked for (what a search optimises)."""

    metrics: tuple[str, ...]
    combinations: tuple[str, ...]
    primary: str

    @property
    def names(self) -> list[str]:
        """Every reported score: the metrics, then the combinations."""
        return [*self.metrics, *self.combinations]

    @property
    def needs_held_out(self) -> bool:
        return any(METRICS.get(n).needs_held_out for n in self.metrics)


def expand(names: list[str]) -> MetricSelection:
    """The selection for the requested names (``all``: every registered metric and combination); an unknown name
    fails listing the valid ones."""
    names = list(names)
    if not names:
        raise ValueError(f"metric.names is empty; valid metrics: {', '.join(METRICS.names() + COMBINATIONS.names())}")
    if ALL in names:
        names = [n for n in names if n != ALL] + METRICS.names() + COMBINATIONS.names()
    metrics: list[str] = []
    combos: list[str] = []

    def add(name: str) -> None:
        if name not in metrics:
            metrics.append(name)

    for name in names:
        if name in COMBINATIONS:
            if name not in combos:
                combos.append(name)
            for component in COMBINATIONS.get(name).components:
                METRICS.get(component)
                add(component)
        elif name in METRICS:
            add(name)
        else:
            raise ValueError(f"unknown metric {name!r}; valid metrics: "
                             f"{', '.join(METRICS.names() + COMBINATIONS.names() + [ALL])} {PLUGIN_HINT}")
    return MetricSelection(tuple(metrics), tuple(combos), names[0])
