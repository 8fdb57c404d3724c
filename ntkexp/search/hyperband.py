"""Hyperband and BOHB as GradSign's ``BOHB.py`` runs them (hpbandster with eta 3, budgets 12 to 200 epochs).

Hyperband (Li et al., 2018) cycles through successive-halving brackets: a bracket evaluates ``n`` configurations at
its smallest budget and promotes the best ``1/eta`` of them to the next budget, up to ``max_budget``. The brackets,
their sizes and budgets follow hpbandster's schedule (with eta 3 and budgets 12-200: brackets of 9-3-1, 3-1 and 3
configurations at budgets 22.2, 66.7 and 200). GradSign's worker ignores the budget: every evaluation, a promotion
included, returns the arch's 12-epoch validation accuracy and is charged 12 epochs of training; under the simulated
clock (:class:`~ntkexp.search.simulated.ClockGuide`) this is exactly what an evaluation is. The result is
hpbandster's incumbent: the best arch among those evaluated at ``max_budget`` (the best evaluated arch if none got
there).

Proposals: random (``hb``), or Optuna's multivariate TPE told every first result (``bohb``; BOHB proper fits a
kernel density estimate per budget and samples a third of its configurations at random: a stated difference); the
metric-assisted variant (G-HB, GradSign App. A) replaces each proposal by the best of ``pool_size`` random archs by
the metric.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ntkexp.search.base import SearchContext, register_search_algo


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


def hyperband(ctx: SearchContext, propose: Callable[[], str | None],
              told: Callable[[str, float], None] | None = None) -> str:
    """Run the brackets in turn (``hb_iterations`` at most) until the guide's budget ends the search."""
    cfg = ctx.cfg
    schedule = brackets(cfg.eta, cfg.min_budget, cfg.max_budget)
    at_top: list[str] = []
    iterations = 0
    while iterations < cfg.hb_iterations and not ctx.exhausted():
        sizes, _ = schedule[iterations % len(schedule)]
        iterations += 1
        configs = [a for a in (propose() for _ in range(sizes[0])) if a is not None]
        for stage in range(len(sizes)):  # the last stage of every bracket is at max_budget
            for arch in configs:
                if ctx.exhausted() or ctx.evaluate(arch) is None:
                    return _incumbent(ctx, at_top, iterations)
                if stage == 0 and told is not None:
                    told(arch, float(ctx.scorer.scores([arch])[0]))
                if stage == len(sizes) - 1:
                    at_top.append(arch)
            if stage + 1 < len(sizes):
                order = np.argsort(-ctx.scorer.scores(configs), kind="stable")[:sizes[stage + 1]]
                configs = [configs[i] for i in sorted(order)]
    return _incumbent(ctx, at_top, iterations)


def _incumbent(ctx: SearchContext, at_top: list[str], iterations: int) -> str:
    ctx.details.update(iterations=iterations, archs_at_max_budget=len(set(at_top)))
    if not at_top:
        return ctx.best()
    return ctx.scorer.best(list(dict.fromkeys(at_top)))


@register_search_algo("hb", knobs=("eta", "min_budget", "max_budget", "hb_iterations"))
def hyperband_random(ctx: SearchContext) -> str:
    """Hyperband with random configurations (G-HB: each the best of ``pool_size`` random archs by the metric)."""
    return hyperband(ctx, lambda: ctx.propose(ctx.draw))


@register_search_algo("bohb", knobs=("eta", "min_budget", "max_budget", "hb_iterations"))
def bohb(ctx: SearchContext) -> str:
    """Hyperband with configurations proposed by Optuna's multivariate TPE, told each configuration's first result
    (metric-assisted: the proposal is replaced by the best of ``pool_size`` random archs, as GradSign's G-HB does)."""
    import optuna

    if ctx.assist is not None:
        return hyperband(ctx, lambda: ctx.propose(ctx.draw))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = [f"d{i}" for i in range(len(ctx.space.choices()))]
    distributions = {n: optuna.distributions.CategoricalDistribution(list(range(len(c))))
                     for n, c in zip(names, ctx.space.choices())}
    sampler = optuna.samplers.TPESampler(seed=int(ctx.rng.integers(2**31)), multivariate=True)
    study = optuna.create_study(direction="maximize", sampler=sampler,
                                study_name=f"ntkexp-bohb-{int(ctx.rng.integers(2**31))}")
    pending: dict[str, list[Any]] = {}

    def propose() -> str | None:
        for _ in range(100):
            trial = study.ask(distributions)
            arch = ctx.from_code([trial.params[n] for n in names])
            if arch is not None:
                pending.setdefault(arch, []).append(trial)
                return arch
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return None

    def told(arch: str, value: float) -> None:
        for trial in pending.pop(arch, []):
            study.tell(trial, value if np.isfinite(value) else None,
                       state=None if np.isfinite(value) else optuna.trial.TrialState.FAIL)

    return hyperband(ctx, propose, told)
