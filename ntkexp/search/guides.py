"""What a search algorithm asks of its guide: the values of archs (each scored once per search), comparisons within
a set, and the cost spent.

Two guides share that interface: :class:`MetricGuide` (one metric, or a registered combination whose components
are ranked within every compared set, as TEG-NAS and NTK-score do), scored through the run's
:class:`~ntkexp.scoring.ArchScorer`, and :class:`OracleGuide`, which reads the benchmark's accuracy at no cost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ntkexp.benchmarks import GroundTruth
from ntkexp.metrics import COMBINATIONS, METRICS, borda_count, oriented, sum_of_ranks
from ntkexp.scoring import ArchScorer, NothingScored


@dataclass
class Cost:
    evaluations: int = 0
    score_seconds: float = 0.0  # compute the scores cost (as recorded when they were computed)
    fresh_seconds: float = 0.0  # compute spent in this search (cache hits cost nothing here)
    wall_start: float = field(default_factory=time.perf_counter)

    @property
    def wall_seconds(self) -> float:
        return time.perf_counter() - self.wall_start


class BudgetExhausted(Exception):
    """Raised by a guide whose next evaluation would cross its budget: that evaluation is not charged, not seen,
    and ends the search (NAS-Bench-201's and GradSign's simulated loops)."""


class Guide:
    """The common part: remembered values, cost, and ranking within a set (higher is better, first on ties)."""

    free = False  # True: evaluating costs nothing (no progress to report)
    remember = True  # False: every evaluation is made (and charged) again, as training an arch again would be
    fail_fast_after: int | None = None  # stop once this many evaluations have all failed (None: check at the end)
    label = "the guide"
    names: list[str]

    def __init__(self) -> None:
        self.values: dict[str, dict[str, float]] = {}
        self.cost = Cost()
        self.failures: dict[str, str] = {}  # arch -> the error that kept it from being scored

    def exhausted(self) -> bool:
        """The guide's own budget is spent (a simulated clock); metric guides have none."""
        return False

    def check_failures(self, what: str) -> None:
        """Refuse a search whose every evaluation failed (its "found" arch would be meaningless), naming the first
        error; partial failures are counted in :meth:`summary`."""
        if self.failures and len(self.failures) == self.cost.evaluations:
            first = next(iter(self.failures.values()))
            raise NothingScored(f"{what}: every one of the {self.cost.evaluations} evaluations failed to score, so "
                               f"the search found nothing; the first error: {first}")

    def _score(self, arch: str) -> tuple[dict[str, float], float, float]:
        """(values, recorded seconds, seconds spent now) of one new arch."""
        raise NotImplementedError

    def direction(self, name: str) -> int:
        raise NotImplementedError

    def peek(self, arch: str) -> dict[str, float] | None:
        """The values an evaluation of ``arch`` would give, charging nothing (None where a guide cannot tell)."""
        return None

    def evaluate(self, arch: str) -> dict[str, float]:
        """The raw values of ``arch`` (scored on first use, then remembered; every time if not :attr:`remember`)."""
        if arch not in self.values or not self.remember:
            values, seconds, fresh = self._score(arch)
            self.values[arch] = values
            self.cost.evaluations += 1
            self.cost.score_seconds += seconds
            self.cost.fresh_seconds += fresh
            if self.fail_fast_after is not None and self.cost.evaluations >= self.fail_fast_after:
                self.check_failures(self.label)
        return self.values[arch]

    def scores(self, archs: list[str]) -> np.ndarray:
        """Comparable scores of ``archs`` (higher is better), from the values already seen (an arch not seen yet is
        evaluated first)."""
        for arch in archs:
            if arch not in self.values:
                self.evaluate(arch)
        if len(self.names) == 1:
            (name,) = self.names
            return oriented([self.values[a][name] for a in archs], self.direction(name))
        return self._combine({n: np.array([self.values[a][n] for a in archs], dtype=np.float64) for n in self.names})

    def _combine(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def best(self, archs: list[str]) -> str:
        """The best of ``archs`` (first on ties, so results are deterministic)."""
        return archs[int(np.argmax(self.scores(archs)))]

    def summary(self) -> dict[str, Any]:
        return {"evaluations": self.cost.evaluations, "failed_evaluations": len(self.failures),
                "score_seconds": self.cost.score_seconds,
                "fresh_seconds": self.cost.fresh_seconds, "wall_seconds": self.cost.wall_seconds}


class MetricGuide(Guide):
    """Guides by a metric or a registered combination (its components ranked within each compared set)."""

    def __init__(self, arch_scorer: ArchScorer, metric: str) -> None:
        super().__init__()
        self.arch_scorer, self.metric, self.label = arch_scorer, metric, f"the metric {metric}"
        if metric in COMBINATIONS:
            combo = COMBINATIONS.get(metric)
            self.names, self.rule = list(combo.components), combo.rule
        else:
            METRICS.get(metric)
            self.names, self.rule = [metric], ""
        missing = [n for n in self.names if n not in arch_scorer.selection.metrics]
        if missing:
            raise ValueError(f"the scorer does not compute {missing} (needed by {metric})")

    def _score(self, arch: str) -> tuple[dict[str, float], float, float]:
        record = self.arch_scorer.score(arch)
        if record.error is not None:
            self.failures[arch] = record.error
        return ({n: float(record.values[n]) for n in self.names}, record.seconds,
                0.0 if record.cached else record.seconds)

    def direction(self, name: str) -> int:
        return METRICS.get(name).direction

    def _combine(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        return sum_of_ranks(columns) if self.rule == "sum_of_ranks" else borda_count(columns)


class OracleGuide(Guide):
    """Guides by the benchmark's accuracy itself, at no cost (the best a guide can do)."""

    free = True

    def __init__(self, ground_truth: GroundTruth, accuracy_key: str) -> None:
        super().__init__()
        ground_truth.require(accuracy_key)
        self.ground_truth, self.key = ground_truth, accuracy_key
        self.names = ["accuracy"]

    def _score(self, arch: str) -> tuple[dict[str, float], float, float]:
        return {"accuracy": float(self.ground_truth.accuracy([arch], self.key)[0])}, 0.0, 0.0

    def direction(self, name: str) -> int:
        return 1
