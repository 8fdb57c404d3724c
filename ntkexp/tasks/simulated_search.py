"""``task=simulated_search``: NAS-Bench-201's simulated-search protocol (GradSign Sec. 5.5 and App. A), each method
``task.simulated.runs`` times: plain RS, REA, REINFORCE, Hyperband and BOHB, their metric-assisted variants (G-RS,
G-REA, G-REINFORCE, G-HB) and A-REA, under a budget of the benchmark's recorded training seconds
(``ntkexp.search.simulated``), by the same algorithm implementations as ``task=search`` with the clock as their
guide and each algorithm's own settings (its defaults, NB201's / GradSign's, changed with
``task.algorithms.<name>.<setting>=...``). The metric is ``metric.names[0]``, scored at initialisation
through the score cache, so the runs together cost one scoring pass over the archs they touch.

Writes ``runs.csv`` (one row per method and run: the found arch, the validation accuracy the search saw, its final
validation and test accuracies, the clock, evaluations, archs scored by the metric and their seconds),
``simulated_search.csv`` (mean, std and n per method, next to ``task.simulated.published`` values),
``simulated_search.png`` and ``summary.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import dataclasses
import logging
from typing import Any

import numpy as np
import pandas as pd

from ntkexp.config import TaskConfig
from ntkexp.metrics import expand
from ntkexp.plotting import pyplot
from ntkexp.scoring import ArchScorer, Progress, RunContext
from ntkexp.search import SEARCH_ALGOS, ClockGuide, MetricGuide, SearchContext, SimulatedTraining
from ntkexp.tables import aggregate, markdown
from ntkexp.tasks.base import RunOutput, register_task

log = logging.getLogger("ntkexp")

#: a method's label -> the algorithm of the search stack that runs it
METHOD_ALGOS = {"RS": "random", "REA": "rea", "REINFORCE": "reinforce", "HB": "hb", "BOHB": "bohb"}


@dataclass
class SimulatedSearchConfig:
    """``task=simulated_search``: benchmark-simulated searches (see ``ntkexp.search.simulated``)."""

    # methods to run: RS, REA, REINFORCE, HB, BOHB; G-<name> for the metric-assisted variant; A-REA
    methods: list[str] = field(default_factory=lambda: ["RS", "G-RS", "REA", "G-REA", "A-REA", "REINFORCE",
                                                         "G-REINFORCE", "HB", "G-HB", "BOHB"])
    runs: int = 500
    budget_train_seconds: float = 12000.0  # of the benchmark's recorded training time (GPU seconds), per run
    dataset: str = "cifar10"  # the data set searched on (its 12-epoch validation accuracy and training time)
    a_rea_metric: str | None = None  # A-REA's metric (GradSign's table: naswot); None: metric.names[0]
    published: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> {column: value} to compare
    answer: str = "auto"  # random_seed (a seed drawn per query, NB201's) | mean | auto: random_seed where the table can
    charge_validation: str = "auto"  # yes (+ one validation pass per query, R_EA.py's) | no | auto: yes where it can


@dataclass
class SimulatedSearchTaskConfig(TaskConfig):
    """``task=simulated_search``: its settings are ``simulated``; each algorithm's own settings, changed from its
    defaults, go under its name in ``algorithms`` (``task.algorithms.rea.population_size=20``); the metric-assisted
    pools are ``search_algo.pool_size`` and ``search_algo.init_pool``."""

    simulated: SimulatedSearchConfig = field(default_factory=SimulatedSearchConfig)
    algorithms: dict[str, dict[str, Any]] = field(default_factory=dict)  # algorithm -> {setting: value} changed


def parse_method(method: str) -> tuple[str, bool, bool]:
    """(algorithm, metric-assisted, A-REA initial population) of a method label such as ``G-REA`` or ``A-REA``."""
    upper = method.upper()
    assisted, a_rea = upper.startswith("G-"), upper == "A-REA"
    base = upper.removeprefix("G-").removeprefix("A-")
    if base not in METHOD_ALGOS:
        raise ValueError(f"unknown simulated-search method {method!r}; methods: {', '.join(METHOD_ALGOS)}, each also "
                         "as G-<name>, and A-REA")
    return METHOD_ALGOS[base], assisted, a_rea


def metric_guide(ctx: RunContext, name: str) -> MetricGuide:
    """The metric as an assisting guide: each arch scored once for all runs; stops once 3 archs have all failed."""
    guide = MetricGuide(ArchScorer(ctx, expand([name])), name)
    guide.fail_fast_after = 3
    return guide


def algorithm_settings(overrides: dict[str, dict[str, Any]], shared: Any, names: set[str]) -> dict[str, Any]:
    """Each algorithm's settings for a simulated search: its defaults with ``overrides[name]`` (refused, naming the
    algorithm's settings, where it has no such setting), the metric-assisted pools of ``shared`` (the
    ``search_algo`` group), and no budget of its own: the clock ends a simulated search."""
    unknown = sorted(set(overrides) - set(METHOD_ALGOS.values()))
    if unknown:
        raise ValueError(f"task.algorithms.{unknown[0]}: no such algorithm in a simulated search; algorithms: "
                         f"{', '.join(METHOD_ALGOS.values())}")
    settings = {}
    for name in sorted(names | set(overrides)):
        algo = SEARCH_ALGOS.get(name)
        values = dict(overrides.get(name) or {})
        for key in ("budget_evals", "budget_score_seconds", "derive", "pool_size", "init_pool"):
            if key in values:
                raise ValueError(f"task.algorithms.{name}.{key}: a simulated search sets {key} itself (the clock ends "
                                 "it; the pools are search_algo.pool_size and search_algo.init_pool)")
        fixed = {"budget_evals": None, "budget_score_seconds": None, "derive": "best_evaluated",
                 "pool_size": shared.pool_size, "init_pool": shared.init_pool}
        if "iterations" in algo.own_settings:
            fixed["iterations"] = None
        try:
            settings[name] = algo.settings(**{**fixed, **values})
        except ValueError as err:
            raise ValueError(f"task.algorithms.{name}: {err}") from None
    return settings


def check_simulated(ctx: RunContext) -> list[tuple[str, str, bool, bool]]:
    """The methods to run, parsed (label, algorithm, metric-assisted, A-REA), once the run is checked: a space whose
    every arch has training records, one metric (not a combination), runs >= 1 and a positive budget."""
    sim_cfg, gt = ctx.config.task.simulated, ctx.require_ground_truth()
    if ctx.space.size is None or len(gt) < ctx.space.size:
        raise ValueError(f"a simulated search needs training records of every arch of the space; the "
                         f"{ctx.space.name} ground truth has {len(gt)} (NAS-Bench-201's ships with ntkexp)")
    methods = [(m, *parse_method(m)) for m in sim_cfg.methods]
    if ctx.selection.combinations:
        raise ValueError("a simulated search is assisted by one metric, not a combination")
    if sim_cfg.runs < 1 or sim_cfg.budget_train_seconds <= 0:
        raise ValueError("task.simulated needs runs >= 1 and budget_train_seconds > 0")
    return methods


def simulated_runs(ctx: RunContext, methods: list[tuple[str, str, bool, bool]], algo_cfgs: dict[str, Any],
                   metric: MetricGuide, a_rea: MetricGuide) -> pd.DataFrame:
    """Every method ``task.simulated.runs`` times on the clock (run r of every method draws from seed (seed, r)):
    one row per run with the found arch, what the search saw, its final accuracies, the clock and the metric's cost."""
    sim_cfg, gt = ctx.config.task.simulated, ctx.require_ground_truth()
    rows: list[dict[str, Any]] = []
    assisted_runs = sim_cfg.runs * sum(bool(assisted or is_a_rea) for _, _, assisted, is_a_rea in methods)
    with Progress(len(methods) * sim_cfg.runs, "simulated runs", ctx.config.task.progress,
                  costly=assisted_runs) as bar:  # a run without a metric costs milliseconds
        for label, name, assisted, is_a_rea in methods:
            for run in range(sim_cfg.runs):
                rng = np.random.default_rng(np.random.SeedSequence([ctx.seed, run]))
                answers = np.random.default_rng(np.random.SeedSequence([ctx.seed, run, 1]))  # the clock's own draws
                sim = SimulatedTraining(gt, sim_cfg.dataset, sim_cfg.budget_train_seconds, answer_mode=sim_cfg.answer,
                                        charge_validation=sim_cfg.charge_validation, rng=answers)
                used = a_rea if is_a_rea else metric
                before = (used.cost.evaluations, used.cost.score_seconds)
                sctx = SearchContext(ctx.space, ClockGuide(sim), algo_cfgs[name], rng, label=label, progress=False,
                                     assist=metric.scores if assisted else None,
                                     init_assist=a_rea.scores if is_a_rea else None)
                found = SEARCH_ALGOS.get(name)(sctx)
                uses_metric = assisted or is_a_rea
                new = used.cost.evaluations - before[0]
                rows.append({"method": label, "run": run, "arch": found,
                             "searched_valid": float(sctx.guide.values[found]["valid"]),
                             **{f"{c}_test": float(gt.accuracy([found], c)[0]) for c in gt.datasets},
                             f"{sim_cfg.dataset}_valid": _maybe(gt, found, f"{sim_cfg.dataset}_valid"),
                             "clock_seconds": sim.spent, "evaluations": sim.evaluations,
                             "metric_archs_new": new if uses_metric else 0,
                             "metric": used.metric if uses_metric else "",
                             "metric_seconds_new": used.cost.score_seconds - before[1] if uses_metric else 0.0})
                bar.step(cached=uses_metric and new == 0, free=not uses_metric,
                         note=f"{label} run {run + 1}/{sim_cfg.runs}, {len(metric.values)} archs scored by the metric")
    return pd.DataFrame(rows)


def results_table(frame: pd.DataFrame, ctx: RunContext) -> pd.DataFrame:
    """Mean, std and n per method of the final accuracies, with ``task.simulated.published`` beside them."""
    sim_cfg = ctx.config.task.simulated
    values = [c for c in frame.columns if c.endswith("_test") or c == f"{sim_cfg.dataset}_valid"]
    table = aggregate(frame, ["method"], values + ["evaluations", "clock_seconds"])
    for method, published in sim_cfg.published.items():
        for column, value in published.items():
            table.loc[table["method"] == method, f"published {column}"] = value
    return table


def simulated_payload(ctx: RunContext, table: pd.DataFrame, algo_cfgs: dict[str, Any], metric: MetricGuide,
                      a_rea: MetricGuide) -> dict[str, Any]:
    sim_cfg, gt = ctx.config.task.simulated, ctx.require_ground_truth()
    a_rea_name = a_rea.metric
    return {
        "metric": metric.metric, "runs": sim_cfg.runs, "budget_train_seconds": sim_cfg.budget_train_seconds,
        "searched_on": sim_cfg.dataset, "methods": sim_cfg.methods,
        "search_algo": {n: dataclasses.asdict(c) for n, c in algo_cfgs.items()},
        "results": {r["method"]: {k: r[k] for k in table.columns if k != "method"} for r in table.to_dict("records")},
        "a_rea_metric": a_rea_name,
        "clock": SimulatedTraining(gt, sim_cfg.dataset, 1.0, answer_mode=sim_cfg.answer,
                                   charge_validation=sim_cfg.charge_validation,
                                   rng=np.random.default_rng(0)).conventions(),
        "metric_cost": {"archs_scored": len(metric.values), "archs_failed": len(metric.failures),
                        "device_seconds": metric.cost.score_seconds,
                        **({f"{a_rea_name}_archs_scored": len(a_rea.values),
                            f"{a_rea_name}_device_seconds": a_rea.cost.score_seconds}
                           if a_rea is not metric else {}),
                        "note": "the metric's cost is reported beside the simulated clock, not charged to it"},
    }


def run_simulated_search(ctx: RunContext, out: RunOutput) -> dict[str, Any]:
    sim_cfg = ctx.config.task.simulated
    methods = check_simulated(ctx)
    metric_name = ctx.selection.primary
    algo_cfgs = algorithm_settings(ctx.config.task.algorithms, ctx.config.search_algo,
                                   {name for _, name, _, _ in methods})
    metric = metric_guide(ctx, metric_name)
    a_rea_name = sim_cfg.a_rea_metric or metric_name
    a_rea = metric if a_rea_name == metric_name else metric_guide(ctx, a_rea_name)
    frame = simulated_runs(ctx, methods, algo_cfgs, metric, a_rea)
    out.table("runs", frame)
    table = results_table(frame, ctx)
    out.table("simulated_search", table)
    payload = simulated_payload(ctx, table, algo_cfgs, metric, a_rea)
    summary = out.summary("simulated_search", payload, {f"{m}/cifar10_test": payload["results"][m]["cifar10_test_mean"]
                                                        for m in payload["results"]}, metric.arch_scorer, epochs=0)
    out.figure("simulated_search", lambda: results_figure(frame, f"{sim_cfg.runs} runs, {sim_cfg.budget_train_seconds:.0f} s "
                                                                 f"of recorded training each, searched on "
                                                                 f"{sim_cfg.dataset}; metric {metric_name}"))
    print(markdown(table[["method", *[c for c in table.columns if c.endswith("_mean") or c.startswith("published")]]],
                   2))
    return summary


def _maybe(gt: Any, arch: str, column: str) -> float:
    return float(gt.frame.at[arch, column]) if column in gt.frame.columns else float("nan")


def results_figure(frame: pd.DataFrame, title: str) -> Any:
    columns = [c for c in frame.columns if c.endswith("_test")]
    fig, axes = pyplot().subplots(1, len(columns), figsize=(4.0 * len(columns), 3.8), squeeze=False)
    methods = list(dict.fromkeys(frame["method"]))
    for ax, column in zip(axes[0], columns):
        ax.boxplot([frame.loc[frame["method"] == m, column].to_numpy() for m in methods], tick_labels=methods)
        ax.tick_params(axis="x", rotation=45, labelsize=7)
        ax.set_title(column.removesuffix("_test") + " test accuracy (%)", fontsize=9)
    fig.suptitle(title, fontsize=8)
    return fig


register_task("simulated_search", config=SimulatedSearchTaskConfig,
              search_settings=("pool_size", "init_pool"), one_algorithm=False)(run_simulated_search)
