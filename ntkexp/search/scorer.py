"""What a search algorithm asks of its metric: scores of archs (each computed once), comparisons within a set, and
the cost spent.

The scorer wraps the task's :class:`ArchScorer` (one metric, several metrics combined by sum of ranks or Borda count
within the compared set, as TEG-NAS and NTK-score do), or the benchmark accuracy itself (``oracle``). Every arch is
scored at most once per run (an in-memory cache in front of the durable one).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ntkexp.benchmarks import GroundTruth
from ntkexp.metrics import borda_count, direction_of, sum_of_ranks

if TYPE_CHECKING:
    from ntkexp.tasks.common import ArchScorer


@dataclass
class Cost:
    evaluations: int = 0
    score_seconds: float = 0.0  # compute the scores cost (as recorded when they were computed)
    fresh_seconds: float = 0.0  # compute spent in this run (cache hits cost nothing here)
    wall_start: float = field(default_factory=time.perf_counter)

    @property
    def wall_seconds(self) -> float:
        return time.perf_counter() - self.wall_start


class SearchScorer:
    def __init__(self, arch_scorer: ArchScorer | None, metric_names: list[str], rule: str = "sum_of_ranks",
                 ground_truth: GroundTruth | None = None, accuracy_key: str | None = None) -> None:
        """``metric_names == ["oracle"]`` scores by ``ground_truth[accuracy_key]`` at no cost."""
        if rule not in ("sum_of_ranks", "borda"):
            raise ValueError(f"search_algo rank rule must be 'sum_of_ranks' or 'borda', got {rule!r}")
        self.arch_scorer, self.names, self.rule = arch_scorer, list(metric_names), rule
        self.ground_truth, self.key = ground_truth, accuracy_key
        self.oracle = self.names == ["oracle"]
        if self.oracle and (ground_truth is None or accuracy_key is None):
            raise ValueError("the oracle scorer needs the benchmark's ground truth")
        if not self.oracle and arch_scorer is None:
            raise ValueError("a metric scorer needs an ArchScorer")
        self.values: dict[str, dict[str, float]] = {}
        self.cost = Cost()
        self.calls = 0  # how many times an arch was actually scored (never twice per arch)

    def evaluate(self, arch: str) -> dict[str, float]:
        """The raw metric values of ``arch`` (scored on first use, then remembered)."""
        if arch in self.values:
            return self.values[arch]
        self.calls += 1
        if self.oracle:
            assert self.ground_truth is not None and self.key is not None
            values = {"oracle": float(self.ground_truth.accuracy([arch], self.key)[0])}
            seconds = fresh = 0.0
        else:
            assert self.arch_scorer is not None
            row = self.arch_scorer.score(arch)
            values = {n: float(row[n]) for n in self.names}
            seconds = float(row["seconds"])
            fresh = 0.0 if row["cached"] else seconds
        self.values[arch] = values
        self.cost.evaluations += 1
        self.cost.score_seconds += seconds
        self.cost.fresh_seconds += fresh
        return values

    def direction(self, name: str) -> int:
        return 1 if name == "oracle" else direction_of(name)

    def scores(self, archs: list[str]) -> np.ndarray:
        """Comparable scores of ``archs`` (higher is better): the oriented metric, or the rank combination within
        this set; undefined values rank worst."""
        for arch in archs:
            self.evaluate(arch)
        columns = {n: np.array([self.values[a][n] for a in archs], dtype=np.float64) for n in self.names}
        if len(self.names) == 1:
            (name,) = self.names
            oriented = self.direction(name) * columns[name]
            return np.where(np.isnan(oriented), -np.inf, oriented)
        combine = sum_of_ranks if self.rule == "sum_of_ranks" else borda_count
        return combine(columns)

    def best(self, archs: list[str]) -> str:
        """The best of ``archs`` (first on ties, so results are deterministic)."""
        return archs[int(np.argmax(self.scores(archs)))]

    def summary(self) -> dict[str, Any]:
        return {"evaluations": self.cost.evaluations, "score_seconds": self.cost.score_seconds,
                "fresh_seconds": self.cost.fresh_seconds, "wall_seconds": self.cost.wall_seconds}
