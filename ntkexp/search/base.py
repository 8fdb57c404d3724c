"""The search-algorithm registry and the context every algorithm runs in (budget, sampling, mutation, the
nearest-arch projection of a search restricted to the benchmark's archs, the metric-assisted candidate pool, the
best-so-far curve, progress).

One implementation of each algorithm serves both protocols: the guide (:mod:`ntkexp.search.guides`) is a metric
(``task=search``), the benchmark's accuracy (the oracle), or NAS-Bench-201's simulated clock
(:class:`~ntkexp.search.simulated.ClockGuide`, ``task=simulated_search``); ``assist`` (a metric's oriented scores)
turns a step into its metric-assisted variant (GradSign App. A: the best of ``pool_size`` candidates is evaluated),
``init_assist`` chooses REA's initial population (A-REA)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Union

import numpy as np

from ntkexp.benchmarks import GroundTruth
from ntkexp.config import SearchAlgoConfig
from ntkexp.registry import Registry
from ntkexp.scoring import Progress
from ntkexp.search.guides import BudgetExhausted, Guide
from ntkexp.spaces import InvalidArchError, SearchSpace

SearchFn = Callable[["SearchContext"], str]
Scores = Callable[[list[str]], np.ndarray]  # oriented scores of archs (higher is better)


@dataclass(frozen=True)
class SearchAlgo:
    """A registered search algorithm: ``fn(ctx) -> best arch`` and its settings schema ``config`` (a
    :class:`~ntkexp.config.SearchAlgoConfig` subclass holding the settings of its own; the budget, derivation and
    assistance settings are every algorithm's)."""

    name: str
    fn: SearchFn
    config: type[SearchAlgoConfig] = SearchAlgoConfig

    def __call__(self, ctx: "SearchContext") -> str:
        return self.fn(ctx)

    @property
    def own_settings(self) -> tuple[str, ...]:
        """The settings of its own (beyond every algorithm's)."""
        shared = {f.name for f in dataclasses.fields(SearchAlgoConfig)}
        return tuple(f.name for f in dataclasses.fields(self.config) if f.name not in shared)

    def settings(self, **values: Any) -> SearchAlgoConfig:
        """Its settings with ``values`` changed from the defaults; an unknown setting is refused naming its own."""
        known = {f.name for f in dataclasses.fields(self.config)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"search algorithm {self.name} has no setting {unknown[0]!r}; its settings: "
                             f"{', '.join(sorted(known - {'name'}))}")
        for key, value in values.items():  # lr=nan would end a search later in a message that does not name it
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"search algorithm {self.name}: {key}={value!r} is not a finite number; give a real "
                                 "value")
        return self.config(**{**values, "name": self.name})


SEARCH_ALGOS: Registry[SearchAlgo] = Registry("search algorithm")


def register_search_algo(name: str, config: type[SearchAlgoConfig] = SearchAlgoConfig
                         ) -> Callable[[SearchFn], SearchAlgo]:
    """Register ``fn(ctx) -> best arch`` as search algorithm ``name`` with its settings schema ``config`` (a
    :class:`~ntkexp.config.SearchAlgoConfig` dataclass); the schema goes into Hydra's config store as
    ``search_algo_schema/<name>``, which ``conf/search_algo/<name>.yaml`` names first in its defaults, so the option
    refuses a setting it does not have."""
    if not (dataclasses.is_dataclass(config) and issubclass(config, SearchAlgoConfig)):
        raise ValueError(f"search algorithm {name!r}: config must be a SearchAlgoConfig dataclass, got {config!r}")

    def wrap(fn: SearchFn) -> SearchAlgo:
        from hydra.core.config_store import ConfigStore

        algo = SEARCH_ALGOS.register(name, SearchAlgo(name, fn, config))
        ConfigStore.instance().store(group="search_algo_schema", name=name, node=config)
        return algo

    return wrap


def algo_settings(name: str, **values: Any) -> SearchAlgoConfig:
    """The settings of the registered search algorithm ``name`` with ``values`` changed (as ``search_algo=<name>
    search_algo.<key>=<value>`` composes them)."""
    return SEARCH_ALGOS.get(name).settings(**values)


class SearchContext:
    """Budget, sampling and mutation (optionally within the benchmark's archs), and the best-so-far curve.

    An algorithm reports anything besides its best arch in :attr:`details` (REINFORCE: its policy's argmax)."""

    def __init__(self, space: SearchSpace, guide: Guide, cfg: SearchAlgoConfig, seed: Union[int, np.random.Generator],
                 ground_truth: GroundTruth | None = None, accuracy_key: str | None = None,
                 candidates: list[str] | None = None, label: str = "search", progress: bool = True,
                 assist: Scores | None = None, init_assist: Scores | None = None) -> None:
        if cfg.budget_evals is not None and cfg.budget_evals < 1:
            raise ValueError(f"search_algo.budget_evals must be >= 1 or null, got {cfg.budget_evals}")
        if cfg.pool_size < 1 or cfg.init_pool < 0:
            raise ValueError(f"search_algo.pool_size must be >= 1 and init_pool >= 0, got {cfg.pool_size} and "
                             f"{cfg.init_pool}")
        self.space, self.guide, self.cfg = space, guide, cfg
        self.assist, self.init_assist = assist, init_assist
        self.ended = False  # the guide's budget would have been crossed: the search is over
        self.crossing: str | None = None  # the arch whose evaluation would have crossed the budget
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
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
        # guards against algorithms that stop finding new archs (no count limit: another budget ends the search)
        self.max_steps = 50 * cfg.budget_evals if cfg.budget_evals is not None else 10**12
        self.label = label
        self.progress = Progress(cfg.budget_evals or 0, label,
                                 enabled=progress and not guide.free and cfg.budget_evals is not None,
                                 interactive=False)

    # ----------------------------------------------------------------------------------------------- budget
    def exhausted(self) -> bool:
        if self.ended or self.guide.exhausted():
            return True
        cost = self.guide.cost
        if self.cfg.budget_evals is not None and cost.evaluations >= self.cfg.budget_evals:
            return True
        if self.candidates is not None and len(self.evaluated) >= len(self.candidates):
            return True
        return self.cfg.budget_score_seconds is not None and cost.score_seconds >= self.cfg.budget_score_seconds

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

    def draw(self) -> str | None:
        """A new random arch: an unevaluated one for a remembering guide (a repeat would teach nothing), a uniform
        draw for a guide that evaluates (and charges) every query, as the simulated references do."""
        if self.guide.remember:
            return self.sample_new()
        if self.candidates is not None:
            return self.candidates[int(self.rng.integers(len(self.candidates)))]
        return self.space.sample(self.rng)

    def propose(self, draw: Callable[[], str | None]) -> str | None:
        """One candidate from ``draw``, or (metric-assisted) the best by ``assist`` of ``pool_size`` draws."""
        if self.assist is None:
            return draw()
        pool = [a for a in (draw() for _ in range(self.cfg.pool_size)) if a is not None]
        return pool[int(np.argmax(self.assist(pool)))] if pool else None

    def initial(self, n: int) -> list[str] | None:
        """A-REA's initial population: the best ``n`` of ``init_pool`` random archs by ``init_assist`` (None
        without one: the algorithm draws its own)."""
        if self.init_assist is None or not self.cfg.init_pool:
            return None
        pool = [a for a in (self.draw() for _ in range(self.cfg.init_pool)) if a is not None]
        order = np.argsort(-self.init_assist(pool), kind="stable")[:n]
        return [pool[i] for i in order]

    def _nearest(self, code: list[int], exclude_self: bool = False, prefer_unseen: bool = False) -> str:
        assert self._codes is not None and self.candidates is not None
        dist = (self._codes != np.array(code)).sum(1).astype(float)
        if exclude_self:
            dist[dist == 0] = np.inf
        if prefer_unseen:
            unseen = np.array([c not in self.guide.values for c in self.candidates])
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
            if not self.guide.remember:  # every query is charged anyway: one mutation, as the references do
                return child
            for _ in range(retries):
                if child not in self.guide.values:
                    break
                child = self.space.mutate(arch, self.rng)
            return child
        return self._nearest(self.space.encode(arch), exclude_self=True, prefer_unseen=True)

    # ----------------------------------------------------------------------------------------------- scoring
    def evaluate(self, arch: str) -> dict[str, float] | None:
        """The guide's values of ``arch``; None once the guide's budget would be crossed (the search is over)."""
        if self.ended:
            return None
        new = arch not in self.guide.values
        try:
            values = self.guide.evaluate(arch)
        except BudgetExhausted:
            self.ended, self.crossing = True, arch
            return None
        if new:
            self.evaluated.append(arch)
            best = self.guide.best(self.evaluated)
            cost = self.guide.cost
            self.curve.append({"evaluations": cost.evaluations, "score_seconds": cost.score_seconds,
                               "wall_seconds": cost.wall_seconds, "best_arch": best,
                               "best_accuracy": self.accuracy(best)})
            cached, self._fresh_before = cost.fresh_seconds == self._fresh_before, cost.fresh_seconds
            # the metric's pick, not the most accurate arch: a combination ranks within the set seen so far, so the
            # pick's accuracy need not rise with every evaluation
            self.progress.step(cached=cached, note=f"the metric's pick so far {best} ({self.accuracy(best):.2f}%)")
        return values

    def keep_crossing(self) -> None:
        """Count the arch whose evaluation crossed the budget among the evaluated ones, uncharged (NAS-Bench-201's
        and GradSign's ``reinforce.py`` append it to the trace before checking the budget, so it can be returned)."""
        if self.crossing is None or self.crossing in self.evaluated:
            return
        values = self.guide.peek(self.crossing)
        if values is not None:
            self.guide.values[self.crossing] = values
            self.evaluated.append(self.crossing)

    def accuracy(self, arch: str) -> float:
        if self.ground_truth is None or self.key is None:
            return float("nan")
        return float(self.ground_truth.accuracy([arch], self.key)[0])

    def best(self) -> str:
        if not self.evaluated:
            raise RuntimeError("the search evaluated no architecture (is the budget 0?)")
        return self.guide.best(self.evaluated)
