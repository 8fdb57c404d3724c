"""Random search, regularized (aging) evolution and REINFORCE, written once for every guide (a metric, the oracle,
the simulated clock) and every metric-assisted variant (see :mod:`ntkexp.search.base`)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from omegaconf import OmegaConf

from ntkexp.config import SearchAlgoConfig
from ntkexp.search.base import SearchContext, register_search_algo


@dataclass
class REAConfig(SearchAlgoConfig):
    """``search_algo=rea``: NAS-Bench-201's population 10 and tournament 3."""

    name: str = "rea"
    population_size: int = 10
    sample_size: int = 3  # the tournament
    iterations: int | None = None  # evolution steps after the population (None: until the budget is spent)


#: the LGA paper's Table 2: REA's scoring budget in GPU seconds with LGA_t (t epochs of training per arch)
LGA_SEARCH_BUDGETS = {3: 3600.0, 5: 5400.0}


def lga_search_budget(train_epochs: int) -> float:
    """REA's budget in the LGA paper's Table 2 for LGA_``train_epochs`` (3,600 s for LGA_3, 5,400 s for LGA_5)."""
    if int(train_epochs) not in LGA_SEARCH_BUDGETS:
        raise ValueError(f"search_algo=rea_lga has the paper's budgets for metric.train_epochs 3 and 5 only, not "
                         f"{train_epochs}; set search_algo.budget_score_seconds")
    return LGA_SEARCH_BUDGETS[int(train_epochs)]


OmegaConf.register_new_resolver("ntkexp_lga_budget", lga_search_budget, replace=True)  # conf/search_algo/rea_lga


@dataclass
class ReinforceConfig(SearchAlgoConfig):
    """``search_algo=reinforce``: NAS-Bench-201's reference (Adam, lr 0.5 as its documented ``REINFORCE.sh cifar10
    0.5 -1``, which GradSign's README runs; a debiased moving-average baseline of momentum 0.9; the guide's value as
    the reward); TEG-NAS's variant is ``conf/search_algo/reinforce_tegnas.yaml``."""

    name: str = "reinforce"
    iterations: int | None = None  # policy updates (None: until the budget is spent)
    optimizer: str = "adam"  # adam (NB201's reference) | sgd (TEG-NAS)
    lr: float = 0.5
    ema: float = 0.9  # the baseline's momentum
    baseline: str = "debiased_ema"  # debiased_ema (NB201) | ema (TEG-NAS eq. 15, b_0 = 0)
    reward: str = "value"  # value (the guide's value; NB201) | step_difference (TEG-NAS eq. 16) | normalised_value


@register_search_algo("random")
def random_search(ctx: SearchContext) -> str:
    """Evaluate random archs until the budget is spent (distinct ones for a metric guide, ``budget_evals`` of them;
    uniform draws under the simulated clock); return the best by the guide. G-RS: each evaluated arch is the best of
    ``pool_size`` draws by the assisting metric."""
    _check_derive(ctx.cfg.derive, ("best_evaluated",), "random")
    while not ctx.exhausted():
        arch = ctx.propose(ctx.draw)
        if arch is None or ctx.evaluate(arch) is None:
            break
    return ctx.best()


@register_search_algo("rea", config=REAConfig)
def regularized_evolution(ctx: SearchContext) -> str:
    """Real et al. (2019): a population of ``population_size``; each step draws ``sample_size`` members, mutates the
    best of them, adds the child and removes the oldest member, for ``iterations`` steps (None: until the budget is
    spent). Returns the best evaluated arch, or with ``derive=population`` the best of the final population (TEG-NAS).
    G-REA: the child is the best of ``pool_size`` mutants by the assisting metric; A-REA: the initial population is
    the best ``population_size`` of ``init_pool`` random archs by its metric."""
    cfg = ctx.cfg
    if cfg.population_size < 1 or not 1 <= cfg.sample_size <= cfg.population_size:
        raise ValueError(f"rea needs 1 <= sample_size ({cfg.sample_size}) <= population_size ({cfg.population_size})")
    _check_derive(cfg.derive, ("best_evaluated", "population"), "rea")
    population: deque[str] = deque()
    initial = ctx.initial(cfg.population_size)
    while len(population) < cfg.population_size and not ctx.exhausted():
        arch = initial[len(population)] if initial and len(population) < len(initial) else ctx.draw()
        if arch is None or ctx.evaluate(arch) is None:
            break
        population.append(arch)
    steps = 0
    limit = ctx.max_steps if cfg.iterations is None else cfg.iterations
    while population and not ctx.exhausted() and steps < limit:
        steps += 1
        parent = ctx.guide.best(tournament(list(population), cfg.sample_size, ctx.rng))
        child = ctx.propose(lambda: ctx.mutate(parent))
        if child is None or ctx.evaluate(child) is None:  # a remembered arch costs a metric guide nothing
            break
        population.append(child)
        population.popleft()
    ctx.details["iterations"] = steps
    if cfg.derive == "population" and population:
        return ctx.guide.best(list(population))
    return ctx.best()


def tournament(population: list[str], size: int, rng: np.random.Generator) -> list[str]:
    """The members a tournament compares: ``size`` draws with replacement, in draw order (NAS-Bench-201's
    ``R_EA.py``: ``random.choice(population)`` ``sample_size`` times), so the best member can miss a tournament."""
    return [population[i] for i in rng.integers(0, len(population), size=size)]


def _check_derive(derive: str, valid: tuple[str, ...], name: str) -> None:
    if derive not in valid:
        raise ValueError(f"search_algo.derive={derive!r} does not apply to {name}; valid: {', '.join(valid)}")


def value(history: list[float], value: float) -> float:
    """The oriented value itself (NAS-Bench-201's REINFORCE: the validation accuracy in %)."""
    return value


def step_difference(history: list[float], value: float) -> float:
    """TEG-NAS eq. 16: (v_t - v_{t-1}) / (max_{s<=t} v_s - min_{s<=t} v_s) of the oriented values v; 0 at the first
    step and when all values so far are equal. ``history`` already ends with ``value``."""
    if len(history) < 2:
        return 0.0
    lo, hi = min(history), max(history)
    return 0.0 if hi == lo else (value - history[-2]) / (hi - lo)


def normalised_value(history: list[float], value: float) -> float:
    """The oriented value min-max normalised over the values so far (``history`` ends with ``value``)."""
    lo, hi = min(history), max(history)
    return 0.0 if hi == lo else (value - lo) / (hi - lo)


REWARDS = {"value": value, "step_difference": step_difference, "normalised_value": normalised_value}


class MovingAverage:
    """The REINFORCE baseline b_t = ema * b_{t-1} + (1 - ema) * r_t from b_0 = 0 (TEG-NAS eq. 15), or with
    ``debiased`` its start-up bias divided out (NAS-Bench-201's: after one reward it is that reward)."""

    def __init__(self, momentum: float, debiased: bool) -> None:
        self.momentum, self.debiased, self.weighted, self.weight = momentum, debiased, 0.0, 0.0

    def update(self, value: float) -> float:
        self.weighted = self.momentum * self.weighted + (1 - self.momentum) * value
        self.weight = self.momentum * self.weight + (1 - self.momentum)
        return self.weighted / self.weight if self.debiased else self.weighted


@register_search_algo("reinforce", config=ReinforceConfig)
def reinforce(ctx: SearchContext) -> str:
    """A factorised categorical policy over the space's decisions trained by REINFORCE: each step samples an arch,
    evaluates it, and moves the policy by ``optimizer`` (adam: NAS-Bench-201's reference; sgd: TEG-NAS eqs. 13-14) on
    -(r - b) log pi(sampled), with the baseline b a moving average (``baseline``: debiased_ema or ema) that includes
    the current reward, for ``iterations`` updates (None: until the budget is spent). The reward sums over the guide's
    values each one's ``reward`` (value, step_difference, normalised_value). G-REINFORCE (GradSign's
    ``reinforce.py``): the evaluated arch is the best of ``pool_size`` mutants of the sampled one by the assisting
    metric, and the policy's gradient is that of the SAMPLED arch's log-probability, rewarded with the evaluated
    arch's value. Returns the best evaluated arch, or with ``derive=policy_argmax`` the policy's most probable arch
    (TEG-NAS), which ``details`` reports either way."""
    import torch

    cfg = ctx.cfg
    _check_derive(cfg.derive, ("best_evaluated", "policy_argmax"), "reinforce")
    for setting, given, valid in (("reward", cfg.reward, tuple(REWARDS)), ("optimizer", cfg.optimizer, ("adam", "sgd")),
                               ("baseline", cfg.baseline, ("debiased_ema", "ema"))):
        if given not in valid:
            raise ValueError(f"search_algo.{setting} must be one of {', '.join(valid)}, got {given!r}")
    reward_of = REWARDS[cfg.reward]
    logits = [torch.zeros(len(c), dtype=torch.float64, requires_grad=True) for c in ctx.space.choices()]
    optimizer = (torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.SGD)(logits, lr=cfg.lr)
    baseline = MovingAverage(cfg.ema, debiased=cfg.baseline == "debiased_ema")
    seen: dict[str, list[float]] = {n: [] for n in ctx.guide.names}
    steps = updates = 0
    limit = ctx.max_steps if cfg.iterations is None else cfg.iterations
    while not ctx.exhausted() and updates < limit and steps < ctx.max_steps:
        steps += 1
        probs = [torch.softmax(lg.detach(), 0).numpy() for lg in logits]
        code = [int(ctx.rng.choice(len(p), p=p / p.sum())) for p in probs]
        sampled = ctx.from_code(code)
        if sampled is None:  # not a valid arch of the space: no update, sample again
            continue
        arch = sampled if ctx.assist is None else ctx.propose(lambda: ctx.mutate(sampled))
        values = ctx.evaluate(arch) if arch is not None else None
        if values is None:
            break
        reward = 0.0
        for name, raw in values.items():
            oriented = ctx.guide.direction(name) * raw
            if not np.isfinite(oriented):
                continue  # an undefined score earns nothing
            seen[name].append(oriented)
            reward += reward_of(seen[name], oriented)
        advantage = reward - baseline.update(reward)
        log_prob = sum(torch.log_softmax(lg, 0)[c] for lg, c in zip(logits, code))
        optimizer.zero_grad()
        (-advantage * log_prob).backward()  # type: ignore[union-attr]
        optimizer.step()
        updates += 1
    ctx.keep_crossing()  # the reference appends the arch that crossed the budget to its trace: it can be returned
    argmax = ctx.from_code([int(torch.argmax(lg.detach())) for lg in logits])
    ctx.details.update(policy_argmax=argmax, iterations=updates)
    if cfg.derive == "policy_argmax" and argmax is not None:
        return argmax
    return ctx.best()
