"""Hyperband and BOHB as GradSign's ``BOHB.py`` runs them (hpbandster with eta 3, budgets 12 to 200 epochs).

Hyperband (Li et al., 2018) cycles through successive-halving brackets: a bracket evaluates ``n`` configurations at
its smallest budget and promotes the best ``1/eta`` of them to the next budget, up to ``max_budget``. The brackets,
their sizes and budgets follow hpbandster's schedule (with eta 3 and budgets 12-200: brackets of 9-3-1, 3-1 and 3
configurations at budgets 22.2, 66.7 and 200). GradSign's worker ignores the budget: every evaluation, a promotion
included, returns the arch's 12-epoch validation accuracy and is charged 12 epochs of training; under the simulated
clock (:class:`~ntkexp.search.simulated.ClockGuide`) this is exactly what an evaluation is. The result is
hpbandster's incumbent: the best arch among those evaluated at ``max_budget`` (the best evaluated arch if none got
there).

Proposals: random (``hb``), or a model (``bohb``): hpbandster's own BOHB configuration generator (a KDE per budget,
NB201's ``BOHB.sh`` settings; ``bohb_model=kde``, the default) or Optuna's multivariate TPE (``bohb_model=tpe``); the
metric-assisted variant (G-HB, GradSign App. A) replaces each proposal by the best of ``pool_size`` random archs by
the metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ntkexp.config import SearchAlgoConfig
from ntkexp.search.base import SearchContext, register_search_algo


@dataclass
class HyperbandConfig(SearchAlgoConfig):
    """``search_algo=hb``: GradSign's BOHB.py settings (eta 3, budgets 12 to 200 epochs, hpbandster's n_iters 100)."""

    name: str = "hb"
    eta: int = 3  # reduction factor
    min_budget: float = 12  # smallest and largest budget, in epochs
    max_budget: float = 200
    hb_iterations: int = 100  # successive-halving iterations at most


@dataclass
class BOHBConfig(HyperbandConfig):
    """``search_algo=bohb``: Hyperband's settings and the configuration model's: hpbandster's KDE with NB201's
    BOHB.sh settings (num_samples 4, random_fraction 0, bandwidth_factor 3, min_bandwidth 0.3), or Optuna's TPE."""

    name: str = "bohb"
    bohb_model: str = "kde"  # kde (hpbandster's BOHB config generator, as NB201's BOHB.sh) | tpe (Optuna)
    num_samples: int = 4  # kde: samples to optimise the acquisition
    random_fraction: float = 0.0  # kde: share of random proposals
    bandwidth_factor: float = 3.0  # kde: widens the KDE to sample from
    min_bandwidth: float = 0.3  # kde
    top_n_percent: int = 15  # kde: the good configurations' share (hpbandster's default)


def brackets(eta: int, min_budget: float, max_budget: float) -> list[tuple[list[int], list[float]]]:
    """hpbandster's successive-halving schedule: one (configurations per stage, budget per stage) per bracket, in the
    order the brackets are run (the most aggressive first)."""
    if eta < 2 or not 0 < min_budget <= max_budget:
        raise ValueError(f"hyperband needs eta >= 2 and 0 < min_budget <= max_budget, got eta={eta}, "
                         f"min_budget={min_budget}, max_budget={max_budget}")
    stages = -int(np.log(min_budget / max_budget) / np.log(eta)) + 1
    budgets = max_budget * np.power(eta, -np.linspace(stages - 1, 0, stages))
    schedule = []
    for s in range(stages - 1, -1, -1):
        n0 = int(np.floor(stages / (s + 1)) * eta ** s)
        schedule.append(([max(int(n0 * eta ** (-j)), 1) for j in range(s + 1)], [float(b) for b in budgets[-s - 1:]]))
    return schedule


def hyperband(ctx: SearchContext, propose: Callable[[float], str | None],
              told: Callable[[str, float, float], None] | None = None) -> str:
    """Run the brackets in turn (``hb_iterations`` at most) until the guide's budget ends the search. As hpbandster
    runs them with one worker, each configuration is proposed (``propose(budget)``) when its evaluation is due, after
    the previous result was told (``told(arch, value, budget)``, at every stage)."""
    cfg = ctx.cfg
    schedule = brackets(cfg.eta, cfg.min_budget, cfg.max_budget)
    at_top: list[str] = []
    iterations = 0
    while iterations < cfg.hb_iterations and not ctx.exhausted():
        sizes, budgets = schedule[iterations % len(schedule)]
        iterations += 1
        configs: list[str] = []
        for stage in range(len(sizes)):  # the last stage of every bracket is at max_budget
            todo = list(configs) if stage else [None] * sizes[0]
            configs = []
            for arch in todo:
                if ctx.exhausted():
                    return _incumbent(ctx, at_top, iterations)
                arch = arch if arch is not None else propose(budgets[stage])
                if arch is None:
                    continue
                if ctx.evaluate(arch) is None:
                    return _incumbent(ctx, at_top, iterations)
                configs.append(arch)
                if told is not None:
                    told(arch, float(ctx.guide.scores([arch])[0]), budgets[stage])
                if stage == len(sizes) - 1:
                    at_top.append(arch)
            if stage + 1 < len(sizes):
                order = np.argsort(-ctx.guide.scores(configs), kind="stable")[:sizes[stage + 1]]
                configs = [configs[i] for i in sorted(order)]
    return _incumbent(ctx, at_top, iterations)


def _incumbent(ctx: SearchContext, at_top: list[str], iterations: int) -> str:
    ctx.details.update(iterations=iterations, archs_at_max_budget=len(set(at_top)))
    if not at_top:
        return ctx.best()
    return ctx.guide.best(list(dict.fromkeys(at_top)))


@register_search_algo("hb", config=HyperbandConfig)
def hyperband_random(ctx: SearchContext) -> str:
    """Hyperband with random configurations (G-HB: each the best of ``pool_size`` random archs by the metric)."""
    return hyperband(ctx, lambda budget: ctx.propose(ctx.draw))


@register_search_algo("bohb", config=BOHBConfig)
def bohb(ctx: SearchContext) -> str:
    """Hyperband with model-proposed configurations: ``bohb_model=kde`` is BOHB itself, hpbandster's configuration
    generator (a KDE of the good and the bad configurations per budget, proposals from the largest budget that has a
    model; NB201's BOHB.sh settings num_samples 4, random_fraction 0, bandwidth_factor 3, min_bandwidth 0.3), told
    every result at its budget; ``bohb_model=tpe``: Optuna's multivariate TPE told each configuration's first result.
    Metric-assisted (G-HB, as GradSign's code): every proposal is the best of ``pool_size`` random archs instead."""
    if ctx.assist is not None:
        return hyperband(ctx, lambda budget: ctx.propose(ctx.draw))
    if ctx.cfg.bohb_model == "kde":
        return _bohb_kde(ctx)
    if ctx.cfg.bohb_model != "tpe":
        raise ValueError(f"search_algo.bohb_model must be kde (hpbandster's BOHB) or tpe (Optuna), got "
                         f"{ctx.cfg.bohb_model!r}")
    return _bohb_tpe(ctx)


def _bohb_kde(ctx: SearchContext) -> str:
    """BOHB with hpbandster's own configuration generator over the space's categorical decisions; the loss it is
    told is 100 - accuracy for the clock (NB201's BOHB.py), minus the oriented score for any other guide. hpbandster
    draws from numpy's global generator: it is seeded from the search's and restored afterwards, so a run is
    repeatable and leaves no trace."""
    from ntkexp.extras import require

    CS = require("ConfigSpace", "search_algo=bohb (bohb_model=kde)")
    KDEGenerator = require("hpbandster.optimizers.config_generators.bohb", "search_algo=bohb (bohb_model=kde)").BOHB
    import logging

    cfg = ctx.cfg
    seed = int(ctx.rng.integers(2**31))
    names = [f"d{i}" for i in range(len(ctx.space.choices()))]
    space = CS.ConfigurationSpace(seed=seed)
    for name, choice in zip(names, ctx.space.choices()):
        space.add(CS.CategoricalHyperparameter(name, list(range(len(choice)))))
    logger = logging.getLogger("ntkexp.bohb")
    logger.setLevel(logging.ERROR)
    generator = KDEGenerator(space, top_n_percent=cfg.top_n_percent, num_samples=cfg.num_samples,
                             random_fraction=cfg.random_fraction, bandwidth_factor=cfg.bandwidth_factor,
                             min_bandwidth=cfg.min_bandwidth, logger=logger)
    configs: dict[str, dict[str, Any]] = {}
    clock = ctx.guide.names == ["valid"]

    def propose(budget: float) -> str | None:
        for _ in range(100):
            config, _ = generator.get_config(budget)
            arch = ctx.from_code([int(config[n]) for n in names])
            if arch is not None:
                configs[arch] = {n: int(config[n]) for n in names}
                return arch
        return None

    def told(arch: str, value: float, budget: float) -> None:
        loss = (100.0 - value) if clock else -value
        generator.new_result(_Job(configs[arch], budget, loss if np.isfinite(loss) else None))

    state = np.random.get_state()
    np.random.seed(seed)
    try:
        return hyperband(ctx, propose, told)
    finally:
        np.random.set_state(state)


class _Job:
    """The parts of an hpbandster job its configuration generator reads."""

    def __init__(self, config: dict[str, Any], budget: float, loss: float | None) -> None:
        self.kwargs = {"config": config, "budget": budget}
        self.result = None if loss is None else {"loss": loss, "info": {}}
        self.exception = None if loss is not None else "undefined value"
        self.timestamps: dict[str, float] = {}
        self.id = (0, 0, 0)


def _bohb_tpe(ctx: SearchContext) -> str:
    from ntkexp.extras import require

    optuna = require("optuna", "search_algo=bohb with bohb_model=tpe")

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = [f"d{i}" for i in range(len(ctx.space.choices()))]
    distributions = {n: optuna.distributions.CategoricalDistribution(list(range(len(c))))
                     for n, c in zip(names, ctx.space.choices())}
    sampler = optuna.samplers.TPESampler(seed=int(ctx.rng.integers(2**31)), multivariate=True)
    study = optuna.create_study(direction="maximize", sampler=sampler,
                                study_name=f"ntkexp-bohb-{int(ctx.rng.integers(2**31))}")
    pending: dict[str, list[Any]] = {}

    def propose(budget: float) -> str | None:
        for _ in range(100):
            trial = study.ask(distributions)
            arch = ctx.from_code([trial.params[n] for n in names])
            if arch is not None:
                pending.setdefault(arch, []).append(trial)
                return arch
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return None

    def told(arch: str, value: float, budget: float) -> None:
        for trial in pending.pop(arch, []):  # the first result of each proposal only
            study.tell(trial, value if np.isfinite(value) else None,
                       state=None if np.isfinite(value) else optuna.trial.TrialState.FAIL)

    return hyperband(ctx, propose, told)
