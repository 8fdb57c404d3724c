"""The search-algorithm registry and the context every algorithm runs in (budget, sampling, mutation, curve)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ntkexp.benchmarks import GroundTruth
from ntkexp.registry import Registry, decorator
from ntkexp.search.scorer import SearchScorer
from ntkexp.spaces import SearchSpace

log = logging.getLogger("ntkexp")


@dataclass
class SearchAlgoConfig:
    """Config group ``search_algo``; fields an algorithm does not use are ignored by it."""

    name: str = "random"
    budget_evals: int = 100  # unique archs scored
    budget_seconds: float | None = None  # recorded scoring compute, if set
    population_size: int = 10  # rea
    sample_size: int = 3  # rea tournament
    lr: float = 0.5  # reinforce
    ema: float = 0.9  # reinforce baseline momentum
    rule: str = "sum_of_ranks"  # how several metrics are combined: sum_of_ranks | borda
    restrict_to_benchmark: bool | None = None  # None: when the ground truth does not cover the whole space


SearchFn = Callable[["SearchContext"], str]
SEARCH_ALGOS: Registry[SearchFn] = Registry("search algorithm")


def register_search_algo(name: str) -> Callable[[SearchFn], SearchFn]:
    return decorator(SEARCH_ALGOS, name)


class SearchContext:
    """Budget, sampling and mutation (optionally within the benchmark's archs), and the best-so-far curve."""

    def __init__(self, space: SearchSpace, scorer: SearchScorer, cfg: SearchAlgoConfig, seed: int,
                 ground_truth: GroundTruth | None = None, accuracy_key: str | None = None,
                 candidates: list[str] | None = None, label: str = "search") -> None:
        if cfg.budget_evals < 1:
            raise ValueError(f"search_algo.budget_evals must be >= 1, got {cfg.budget_evals}")
        self.space, self.scorer, self.cfg = space, scorer, cfg
        self.rng = np.random.default_rng(seed)
        self.ground_truth, self.key = ground_truth, accuracy_key
        self.candidates = candidates
        self._codes = None if candidates is None else np.array([space.encode(a) for a in candidates])
        self.evaluated: list[str] = []
        self.curve: list[dict[str, Any]] = []
        self.max_steps = 50 * cfg.budget_evals  # guards against algorithms that stop finding new archs
        self.label = label
        self._log_every = max(1, cfg.budget_evals // 10)
        self._last_log = time.perf_counter()

    # ----------------------------------------------------------------------------------------------- budget
    def exhausted(self) -> bool:
        cost = self.scorer.cost
        if cost.evaluations >= self.cfg.budget_evals:
            return True
        if self.candidates is not None and len(self.evaluated) >= len(self.candidates):
            return True
        return self.cfg.budget_seconds is not None and cost.score_seconds >= self.cfg.budget_seconds

    # ----------------------------------------------------------------------------------------------- moves
    def sample(self) -> str:
        if self.candidates is not None:
            return self.candidates[int(self.rng.integers(len(self.candidates)))]
        return self.space.sample(self.rng)

    def sample_new(self) -> str | None:
        """A uniformly drawn arch not evaluated yet (None when every candidate has been)."""
        seen = set(self.evaluated)
        if self.candidates is not None:
            fresh = [a for a in self.candidates if a not in seen]
            return fresh[int(self.rng.integers(len(fresh)))] if fresh else None
        for _ in range(10_000):
            arch = self.space.sample(self.rng)
            if arch not in seen:
                return arch
        return None

    def project(self, arch: str) -> str:
        """``arch`` itself, or (restricted search) a uniformly chosen benchmark arch nearest to it in Hamming
        distance."""
        if self.candidates is None:
            return arch
        assert self._codes is not None
        dist = (self._codes != np.array(self.space.encode(arch))).sum(1)
        nearest = np.flatnonzero(dist == dist.min())
        return self.candidates[int(self.rng.choice(nearest))]

    def mutate(self, arch: str, retries: int = 10) -> str:
        """A child of ``arch`` that has not been evaluated yet where possible: the space's mutation (redrawn up to
        ``retries`` times while it lands on a seen arch), or, in a restricted search, a uniformly chosen unevaluated
        benchmark arch nearest to ``arch`` (any nearest one once all are seen)."""
        if self.candidates is None:
            child = self.space.mutate(arch, self.rng)
            for _ in range(retries):
                if child not in self.scorer.values:
                    break
                child = self.space.mutate(arch, self.rng)
            return child
        assert self._codes is not None
        dist = (self._codes != np.array(self.space.encode(arch))).sum(1).astype(float)
        dist[dist == 0] = np.inf
        unseen = np.array([c not in self.scorer.values for c in self.candidates])
        if (unseen & np.isfinite(dist)).any():
            dist[~unseen] = np.inf
        nearest = np.flatnonzero(dist == dist.min())
        return self.candidates[int(self.rng.choice(nearest))]

    # ----------------------------------------------------------------------------------------------- scoring
    def evaluate(self, arch: str) -> dict[str, float]:
        new = arch not in self.scorer.values
        values = self.scorer.evaluate(arch)
        if new:
            self.evaluated.append(arch)
            best = self.scorer.best(self.evaluated)
            cost = self.scorer.cost
            self.curve.append({"evaluations": cost.evaluations, "score_seconds": cost.score_seconds,
                               "wall_seconds": cost.wall_seconds, "best_arch": best,
                               "best_accuracy": self.accuracy(best)})
            self._report(cost.evaluations, best)
        return values

    def _report(self, evaluations: int, best: str) -> None:
        """A progress line every tenth of the budget or minute (metric-guided searches only: the oracle is free)."""
        if self.scorer.oracle:
            return
        now = time.perf_counter()
        if evaluations % self._log_every and now - self._last_log < 60.0:
            return
        self._last_log = now
        cost = self.scorer.cost
        log.info("%s: %d/%d archs evaluated, %.0f s of scoring; best so far %s (accuracy %.2f%%)", self.label,
                 evaluations, self.cfg.budget_evals, cost.score_seconds, best, self.accuracy(best))

    def accuracy(self, arch: str) -> float:
        if self.ground_truth is None or self.key is None:
            return float("nan")
        return float(self.ground_truth.accuracy([arch], self.key)[0])

    def best(self) -> str:
        if not self.evaluated:
            raise RuntimeError("the search evaluated no architecture (is the budget 0?)")
        return self.scorer.best(self.evaluated)
