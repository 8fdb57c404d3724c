"""``task=simulated_search``: NAS-Bench-201's simulated-search protocol (GradSign Sec. 5.5 and App. A), each method
``task.simulated.runs`` times: plain RS, REA, REINFORCE, Hyperband and BOHB, their metric-assisted variants (G-RS,
G-REA, G-REINFORCE, G-HB) and A-REA, under a budget of the benchmark's recorded training seconds
(``ntkexp.search.simulated``), by the same algorithm implementations as ``task=search`` with the clock as their
guide and the ``search_algo`` group's settings. The metric is ``metric.names[0]``, scored at initialisation
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
from ntkexp.search import SEARCH_ALGOS, ClockGuide, MetricScorer, SearchContext, SimulatedTraining
from ntkexp.tables import aggregate, markdown
from ntkexp.tasks.base import RunOutput, register_task

log = logging.getLogger("ntkexp")

#: a method's label -> the algorithm of the search stack that runs it
METHOD_ALGOS = {"RS": "random", "REA": "rea", "REINFORCE": "reinforce", "HB": "hb", "BOHB": "bohb"}


@dataclass
class SimulatedSearchConfig:
    """``task=simulated_search``: benchmark-simulated searches (see ``ntkexp.search.simulated``); the algorithms'
    settings are the ``search_algo`` group's."""

    # methods to run: RS, REA, REINFORCE, HB, BOHB; G-<name> for the metric-assisted variant; A-REA
    methods: list[str] = field(default_factory=lambda: ["RS", "G-RS", "REA", "G-REA", "A-REA", "REINFORCE",
                                                         "G-REINFORCE", "HB", "G-HB", "BOHB"])
    runs: int = 500
    budget_seconds: float = 12000.0  # of the benchmark's recorded training time (GPU seconds), per run
    dataset: str = "cifar10"  # the data set searched on (its 12-epoch validation accuracy and training time)
    a_rea_metric: str | None = None  # A-REA's metric (GradSign's table: naswot); None: metric.names[0]
    published: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> {column: value} to compare
    answer: str = "auto"  # random_seed (a seed drawn per query, NB201's) | mean | auto: random_seed where the table can
    charge_validation: str = "auto"  # yes (+ one validation pass per query, R_EA.py's) | no | auto: yes where it can


@dataclass
class SimulatedSearchTaskConfig(TaskConfig):
    """``task=simulated_search``: its settings are ``simulated`` (the algorithms' are the ``search_algo`` group's)."""

    simulated: SimulatedSearchConfig = field(default_factory=SimulatedSearchConfig)


def parse_method(method: str) -> tuple[str, bool, bool]:
    """(algorithm, metric-assisted, A-REA initial population) of a method label such as ``G-REA`` or ``A-REA``."""
    upper = method.upper()
    assisted, a_rea = upper.startswith("G-"), upper == "A-REA"
    base = upper.removeprefix("G-").removeprefix("A-")
    if base not in METHOD_ALGOS:
        raise ValueError(f"unknown simulated-search method {method!r}; methods: {', '.join(METHOD_ALGOS)}, each also "
                         "as G-<name>, and A-REA")
    return METHOD_ALGOS[base], assisted, a_rea


def metric_guide(ctx: RunContext, name: str) -> MetricScorer:
    """The metric as an assisting guide: each arch scored once for all runs; stops once 3 archs have all failed."""
    guide = MetricScorer(ArchScorer(ctx, expand([name])), name)
    guide.fail_fast_after = 3
    return guide


def run_simulated_search(ctx: RunContext, out: RunOutput) -> dict[str, Any]:
    sim_cfg = ctx.config.task.simulated
    gt = ctx.require_ground_truth()
    if ctx.space.size is None or len(gt) < ctx.space.size:
        raise ValueError(f"a simulated search needs training records of every arch of the space; the "
                         f"{ctx.space.name} ground truth has {len(gt)} (NAS-Bench-201's ships with ntkexp)")
    methods = [(m, *parse_method(m)) for m in sim_cfg.methods]
    metric_name = ctx.selection.primary
    if ctx.selection.combinations:
        raise ValueError("a simulated search is assisted by one metric, not a combination")
    if sim_cfg.runs < 1 or sim_cfg.budget_seconds <= 0:
        raise ValueError("task.simulated needs runs >= 1 and budget_seconds > 0")
    algo_cfg = dataclasses.replace(ctx.config.search_algo, budget_evals=10**9, budget_seconds=None, iterations=None,
                                   derive="best_evaluated")  # the clock ends a simulated search
    metric = metric_guide(ctx, metric_name)
    a_rea_name = sim_cfg.a_rea_metric or metric_name
    a_rea = metric if a_rea_name == metric_name else metric_guide(ctx, a_rea_name)
    rows: list[dict[str, Any]] = []
    assisted_runs = sim_cfg.runs * sum(bool(assisted or is_a_rea) for _, _, assisted, is_a_rea in methods)
    with Progress(len(methods) * sim_cfg.runs, "simulated runs", ctx.config.task.progress,
                  costly=assisted_runs) as bar:  # a run without a metric costs milliseconds
        for label, name, assisted, is_a_rea in methods:
            for run in range(sim_cfg.runs):
                rng = np.random.default_rng(np.random.SeedSequence([ctx.seed, run]))
                answers = np.random.default_rng(np.random.SeedSequence([ctx.seed, run, 1]))  # the clock's own draws
                sim = SimulatedTraining(gt, sim_cfg.dataset, sim_cfg.budget_seconds, answer_mode=sim_cfg.answer,
                                        charge_validation=sim_cfg.charge_validation, rng=answers)
                used = a_rea if is_a_rea else metric
                before = (used.cost.evaluations, used.cost.score_seconds)
                sctx = SearchContext(ctx.space, ClockGuide(sim), algo_cfg, rng, label=label, progress=False,
                                     assist=metric.scores if assisted else None,
                                     init_assist=a_rea.scores if is_a_rea else None)
                found = SEARCH_ALGOS.get(name)(sctx)
                uses_metric = assisted or is_a_rea
                new = used.cost.evaluations - before[0]
                rows.append({"method": label, "run": run, "arch": found,
                             "searched_valid": float(sctx.scorer.values[found]["valid"]),
                             **{f"{c}_test": float(gt.accuracy([found], c)[0]) for c in gt.datasets},
                             f"{sim_cfg.dataset}_valid": _maybe(gt, found, f"{sim_cfg.dataset}_valid"),
                             "clock_seconds": sim.spent, "evaluations": sim.evaluations,
                             "metric_archs_new": new if uses_metric else 0,
                             "metric": used.metric if uses_metric else "",
                             "metric_seconds_new": used.cost.score_seconds - before[1] if uses_metric else 0.0})
                bar.step(cached=uses_metric and new == 0, free=not uses_metric,
                         note=f"{label} run {run + 1}/{sim_cfg.runs}, {len(metric.values)} archs scored by the metric")
    frame = pd.DataFrame(rows)
    out.table("runs", frame)
    values = [c for c in frame.columns if c.endswith("_test") or c == f"{sim_cfg.dataset}_valid"]
    table = aggregate(frame, ["method"], values + ["evaluations", "clock_seconds"])
    for method, published in sim_cfg.published.items():
        for column, value in published.items():
            table.loc[table["method"] == method, f"published {column}"] = value
    out.table("simulated_search", table)
    payload = {
        "metric": metric_name, "runs": sim_cfg.runs, "budget_seconds": sim_cfg.budget_seconds,
        "searched_on": sim_cfg.dataset, "methods": sim_cfg.methods, "search_algo": dataclasses.asdict(algo_cfg),
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
    summary = out.summary("simulated_search", payload, {f"{m}/cifar10_test": payload["results"][m]["cifar10_test_mean"]
                                                        for m in payload["results"]}, metric.arch_scorer, epochs=0)
    out.figure("simulated_search", lambda: results_figure(frame, f"{sim_cfg.runs} runs, {sim_cfg.budget_seconds:.0f} s "
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
              search_knobs=("pool_size", "init_pool"), one_algorithm=False)(run_simulated_search)
