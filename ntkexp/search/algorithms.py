"""Random search, regularized (aging) evolution and REINFORCE, each guided only by the scorer."""

from __future__ import annotations

from collections import deque

import numpy as np

from ntkexp.search.base import SearchContext, register_search_algo


@register_search_algo("random")
def random_search(ctx: SearchContext) -> str:
    """Score ``budget_evals`` distinct uniformly drawn archs; return the best by the metric."""
    _check_derive(ctx.cfg.derive, ("best_evaluated",), "random")
    while not ctx.exhausted():
        arch = ctx.sample_new()
        if arch is None:
            break
        ctx.evaluate(arch)
    return ctx.best()


@register_search_algo("rea")
def regularized_evolution(ctx: SearchContext) -> str:
    """Real et al. (2019): a population of ``population_size``; each step draws ``sample_size`` members, mutates the
    best of them, adds the child and removes the oldest member, for ``iterations`` steps (None: until the budget is
    spent). Returns the best evaluated arch, or with ``derive=population`` the best of the final population (TEG-NAS)."""
    cfg = ctx.cfg
    if cfg.population_size < 1 or not 1 <= cfg.sample_size <= cfg.population_size:
        raise ValueError(f"rea needs 1 <= sample_size ({cfg.sample_size}) <= population_size ({cfg.population_size})")
    _check_derive(cfg.derive, ("best_evaluated", "population"), "rea")
    population: deque[str] = deque()
    while len(population) < cfg.population_size and not ctx.exhausted():
        arch = ctx.sample_new()
        if arch is None:
            break
        ctx.evaluate(arch)
        population.append(arch)
    steps = 0
    limit = ctx.max_steps if cfg.iterations is None else cfg.iterations
    while not ctx.exhausted() and steps < limit:
        steps += 1
        idx = ctx.rng.choice(len(population), size=min(cfg.sample_size, len(population)), replace=False)
        parent = ctx.scorer.best([population[i] for i in sorted(idx)])
        child = ctx.mutate(parent)
        ctx.evaluate(child)  # an arch seen before costs nothing: its score is remembered
        population.append(child)
        population.popleft()
    ctx.details["iterations"] = steps
    if cfg.derive == "population":
        return ctx.scorer.best(list(population))
    return ctx.best()


def _check_derive(derive: str, valid: tuple[str, ...], name: str) -> None:
    if derive not in valid:
        raise ValueError(f"search_algo.derive={derive!r} does not apply to {name}; valid: {', '.join(valid)}")


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


REWARDS = {"step_difference": step_difference, "normalised_value": normalised_value}


@register_search_algo("reinforce")
def reinforce(ctx: SearchContext) -> str:
    """A factorised categorical policy over the space's decisions, trained by REINFORCE with an exponential moving
    average baseline b_t = ema * b_{t-1} + (1 - ema) * r_t, b_0 = 0 (TEG-NAS eqs. 13-15), for ``iterations`` policy
    updates (None: until the budget is spent). The reward sums over the guide's metrics each metric's ``reward``:
    ``step_difference`` (TEG-NAS eq. 16, default) or ``normalised_value``. Returns the best evaluated arch, or with
    ``derive=policy_argmax`` the policy's most probable arch (TEG-NAS), which ``details`` reports either way."""
    cfg = ctx.cfg
    _check_derive(cfg.derive, ("best_evaluated", "policy_argmax"), "reinforce")
    if cfg.reward not in REWARDS:
        raise ValueError(f"search_algo.reward must be one of {', '.join(REWARDS)}, got {cfg.reward!r}")
    reward_of = REWARDS[cfg.reward]
    choices = ctx.space.choices()
    logits = [np.zeros(len(c)) for c in choices]
    seen: dict[str, list[float]] = {n: [] for n in ctx.scorer.names}
    baseline = 0.0
    steps = updates = 0
    limit = ctx.max_steps if cfg.iterations is None else cfg.iterations
    while not ctx.exhausted() and updates < limit and steps < ctx.max_steps:
        steps += 1
        probs = [np.exp(lg - lg.max()) / np.exp(lg - lg.max()).sum() for lg in logits]
        code = [int(ctx.rng.choice(len(p), p=p)) for p in probs]
        arch = ctx.from_code(code)
        if arch is None:  # not a valid arch of the space: no update, sample again
            continue
        code = ctx.space.encode(arch)
        values = ctx.evaluate(arch)
        reward = 0.0
        for name, value in values.items():
            oriented = ctx.scorer.direction(name) * value
            if not np.isfinite(oriented):
                continue  # an undefined score earns nothing
            seen[name].append(oriented)
            reward += reward_of(seen[name], oriented)
        baseline = cfg.ema * baseline + (1 - cfg.ema) * reward
        advantage = reward - baseline
        for d, (p, c) in enumerate(zip(probs, code)):
            grad = -p
            grad[c] += 1.0  # d log pi(c) / d logits
            logits[d] += cfg.lr * advantage * grad
        updates += 1
    argmax = ctx.from_code([int(np.argmax(lg)) for lg in logits])
    ctx.details.update(policy_argmax=argmax, iterations=updates)
    if cfg.derive == "policy_argmax" and argmax is not None:
        return argmax
    return ctx.best()
