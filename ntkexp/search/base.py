"""The search-algorithm registry and the context every algorithm runs in (budget, sampling, mutation, the
nearest-arch projection of a search restricted to the benchmark's archs, the best-so-far curve, progress)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ntkexp.benchmarks import GroundTruth
from ntkexp.config import SearchAlgoConfig
from ntkexp.registry import Registry
from ntkexp.scoring import Progress
from ntkexp.search.scorer import Guide
from ntkexp.spaces import InvalidArchError, SearchSpace

SearchFn = Callable[["SearchContext"], str]
SEARCH_ALGOS: Registry[SearchFn] = Registry("search algorithm")


def register_search_algo(name: str) -> Callable[[SearchFn], SearchFn]:
    """Register ``fn(ctx) -> best arch`` as search algorithm ``name``."""

    def wrap(fn: SearchFn) -> SearchFn:
        return SEARCH_ALGOS.register(name, fn)

    return wrap


class SearchContext:
    """Budget, sampling and mutation (optionally within the benchmark's archs), and the best-so-far curve.

    An algorithm reports anything besides its best arch in :attr:`details` (REINFORCE: its policy's argmax)."""

    def __init__(self, space: SearchSpace, scorer: Guide, cfg: SearchAlgoConfig, seed: int,
                 ground_truth: GroundTruth | None = None, accuracy_key: str | None = None,
                 candidates: list[str] | None = None, label: str = "search", progress: bool = True) -> None:
        if cfg.budget_evals < 1:
            raise ValueError(f"search_algo.budget_evals must be >= 1, got {cfg.budget_evals}")
        self.space, self.scorer, self.cfg = space, scorer, cfg
        self.rng = np.random.default_rng(seed)
        self.ground_truth, self.key = ground_truth, accuracy_key
        self.candidates = candidates
        self._codes = None
        if candidates is not None:
            try:
                self._codes = np.array([space.encode(a) for a in candidates])
            except InvalidArchError as err:
                raise ValueError(f"the benchmark's archs cannot be encoded in the {space.name} space's search "
                                 f"decisions: {err}") from None
        self.evaluated: list[str] = []
        self.curve: list[dict[str, Any]] = []
        self.details: dict[str, Any] = {}
        self._fresh_before = 0.0
        self.max_steps = 50 * cfg.budget_evals  # guards against algorithms that stop finding new archs
        self.label = label
        self.progress = Progress(cfg.budget_evals, label, enabled=progress and not scorer.free, interactive=False)

    # ----------------------------------------------------------------------------------------------- budget
    def exhausted(self) -> bool:
        cost = self.scorer.cost
        if cost.evaluations >= self.cfg.budget_evals:
            return True
        if self.candidates is not None and len(self.evaluated) >= len(self.candidates):
            return True
        return self.cfg.budget_seconds is not None and cost.score_seconds >= self.cfg.budget_seconds

    # ----------------------------------------------------------------------------------------------- moves
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

    def _nearest(self, code: list[int], exclude_self: bool = False, prefer_unseen: bool = False) -> str:
        assert self._codes is not None and self.candidates is not None
        dist = (self._codes != np.array(code)).sum(1).astype(float)
        if exclude_self:
            dist[dist == 0] = np.inf
        if prefer_unseen:
            unseen = np.array([c not in self.scorer.values for c in self.candidates])
            if (unseen & np.isfinite(dist)).any():
                dist[~unseen] = np.inf
        nearest = np.flatnonzero(dist == dist.min())
        return self.candidates[int(self.rng.choice(nearest))]

    def from_code(self, code: list[int]) -> str | None:
        """The arch a code of :meth:`SearchSpace.choices` indices describes: in a restricted search a uniformly chosen
        benchmark arch nearest to it in Hamming distance, else the decoded arch (None when it is not valid)."""
        if self.candidates is not None:
            return self._nearest(code)
        try:
            return self.space.decode(code)
        except InvalidArchError:
            return None

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
        return self._nearest(self.space.encode(arch), exclude_self=True, prefer_unseen=True)

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
            cached, self._fresh_before = cost.fresh_seconds == self._fresh_before, cost.fresh_seconds
            # the metric's pick, not the most accurate arch: a combination ranks within the set seen so far, so the
            # pick's accuracy need not rise with every evaluation
            self.progress.step(cached=cached, note=f"the metric's pick so far {best} ({self.accuracy(best):.2f}%)")
        return values

    def accuracy(self, arch: str) -> float:
        if self.ground_truth is None or self.key is None:
            return float("nan")
        return float(self.ground_truth.accuracy([arch], self.key)[0])

    def best(self) -> str:
        if not self.evaluated:
            raise RuntimeError("the search evaluated no architecture (is the budget 0?)")
        return self.scorer.best(self.evaluated)
