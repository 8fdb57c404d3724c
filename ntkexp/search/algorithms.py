"""Random search, regularized (aging) evolution and REINFORCE, each guided only by the scorer."""

from __future__ import annotations

from collections import deque

import numpy as np

from ntkexp.search.base import SearchContext, register_search_algo


@register_search_algo("random")
def random_search(ctx: SearchContext) -> str:
    """Score ``budget_evals`` distinct uniformly drawn archs; return the best by the metric."""
    while not ctx.exhausted():
        arch = ctx.sample_new()
        if arch is None:
            break
        ctx.evaluate(arch)
    return ctx.best()


@register_search_algo("rea")
def regularized_evolution(ctx: SearchContext) -> str:
    """Real et al. (2019): a population of ``population_size``; each step draws ``sample_size`` members, mutates the
    best of them, adds the child and removes the oldest member. Returns the best evaluated arch."""
    cfg = ctx.cfg
    if cfg.population_size < 1 or not 1 <= cfg.sample_size <= cfg.population_size:
        raise ValueError(f"rea needs 1 <= sample_size ({cfg.sample_size}) <= population_size ({cfg.population_size})")
    population: deque[str] = deque()
    while len(population) < cfg.population_size and not ctx.exhausted():
        arch = ctx.sample_new()
        if arch is None:
            break
        ctx.evaluate(arch)
        population.append(arch)
    steps = 0
    while not ctx.exhausted() and steps < ctx.max_steps:
        steps += 1
        idx = ctx.rng.choice(len(population), size=min(cfg.sample_size, len(population)), replace=False)
        parent = ctx.scorer.best([population[i] for i in sorted(idx)])
        child = ctx.mutate(parent)
        ctx.evaluate(child)  # an arch seen before costs nothing: its score is remembered
        population.append(child)
        population.popleft()
    return ctx.best()


def _normalised(values: list[float], value: float) -> float:
    lo, hi = min(values), max(values)
    return 0.0 if hi == lo else (value - lo) / (hi - lo)


@register_search_algo("reinforce")
def reinforce(ctx: SearchContext) -> str:
    """A factorised categorical policy over the space's decisions, trained by REINFORCE with an exponential moving
    average baseline (TEG-NAS). The reward of an arch is each metric's oriented value, min-max normalised over the
    archs seen so far, summed over metrics. Returns the best evaluated arch."""
    cfg = ctx.cfg
    choices = ctx.space.choices()
    logits = [np.zeros(len(c)) for c in choices]
    seen: dict[str, list[float]] = {n: [] for n in ctx.scorer.names}
    baseline: float | None = None
    steps = 0
    while not ctx.exhausted() and steps < ctx.max_steps:
        steps += 1
        probs = [np.exp(lg - lg.max()) / np.exp(lg - lg.max()).sum() for lg in logits]
        code = [int(ctx.rng.choice(len(p), p=p)) for p in probs]
        arch = ctx.from_code(code)
        if arch is None:  # not a valid arch of the space: no reward, try again
            continue
        code = ctx.space.encode(arch)
        values = ctx.evaluate(arch)
        reward = 0.0
        for name, value in values.items():
            oriented = ctx.scorer.direction(name) * value
            if not np.isfinite(oriented):
                continue  # an undefined score earns nothing
            seen[name].append(oriented)
            reward += _normalised(seen[name], oriented)
        baseline = reward if baseline is None else cfg.ema * baseline + (1 - cfg.ema) * reward
        advantage = reward - baseline
        for d, (p, c) in enumerate(zip(probs, code)):
            grad = -p
            grad[c] += 1.0  # d log pi(c) / d logits
            logits[d] += cfg.lr * advantage * grad
    ctx.details["policy_argmax"] = ctx.from_code([int(np.argmax(lg)) for lg in logits])
    return ctx.best()
