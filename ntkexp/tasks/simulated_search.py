"""``task=simulated_search``: NAS-Bench-201's simulated-search protocol (GradSign Sec. 5.5 and App. A), each method
``task.simulated.runs`` times: plain RS, REA, REINFORCE, Hyperband and BOHB, their metric-assisted variants (G-RS,
G-REA, G-REINFORCE, G-HB) and A-REA, under a budget of the benchmark's recorded training seconds
(``ntkexp.search.simulated``). The metric is ``metric.names[0]``, scored at initialisation through the score cache,
so the runs together cost one scoring pass over the archs they touch.

Writes ``runs.csv`` (one row per method and run: the found arch, the validation accuracy the search saw, its final
validation and test accuracies, the clock, evaluations, archs scored by the metric and their seconds),
``simulated_search.csv`` (mean, std and n per method, next to ``task.simulated.published`` values),
``simulated_search.png`` and ``summary.json``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ntkexp.metrics import expand, oriented, traits
from ntkexp.plotting import pyplot
from ntkexp.scoring import ArchScorer, Progress, RunContext
from ntkexp.search.simulated import SIMULATED_ALGOS, SimContext, SimulatedTraining
from ntkexp.tables import aggregate, markdown, write_csv
from ntkexp.tasks.base import RunOutput, register_task

log = logging.getLogger("ntkexp")


def parse_method(method: str) -> tuple[str, bool, bool]:
    """(algorithm, metric-assisted, A-REA initial population) of a method label such as ``G-REA`` or ``A-REA``."""
    upper = method.upper()
    assisted, a_rea = upper.startswith("G-"), upper == "A-REA"
    name = upper.removeprefix("G-").removeprefix("A-").lower()
    if name not in SIMULATED_ALGOS:
        raise ValueError(f"unknown simulated-search method {method!r}; methods: "
                         f"{', '.join(n.upper() for n in SIMULATED_ALGOS)}, each also as G-<name>, and A-REA")
    return name, assisted, a_rea


class MetricCache:
    """Oriented metric scores (higher is better) of archs, each scored once for all runs, with their seconds."""

    def __init__(self, scorer: ArchScorer, name: str) -> None:
        self.scorer, self.name = scorer, name
        self.direction = traits(name).direction
        self.values: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self.failures: dict[str, str] = {}  # arch -> the error that kept it from being scored

    def __call__(self, archs: list[str]) -> np.ndarray:
        for arch in archs:
            if arch not in self.values:
                record = self.scorer.score(arch)
                self.values[arch] = float(record.values[self.name])
                self.seconds[arch] = record.seconds
                if record.error is not None:
                    self.failures[arch] = record.error
                    if len(self.failures) == len(self.values) >= 3:  # nothing has scored: stop, do not search blind
                        raise RuntimeError(f"the metric {self.name} failed on every arch it scored "
                                           f"({len(self.failures)}); the first error: "
                                           f"{next(iter(self.failures.values()))}")
        return oriented([self.values[a] for a in archs], self.direction)


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
    if sim_cfg.runs < 1 or sim_cfg.budget_seconds <= 0 or sim_cfg.pool_size < 1:
        raise ValueError("task.simulated needs runs >= 1, budget_seconds > 0 and pool_size >= 1")
    scorer = ArchScorer(ctx, expand([metric_name]))
    cache = MetricCache(scorer, metric_name)
    a_rea_name = sim_cfg.a_rea_metric or metric_name
    a_rea_cache = cache if a_rea_name == metric_name else MetricCache(ArchScorer(ctx, expand([a_rea_name])), a_rea_name)
    rows: list[dict[str, Any]] = []
    assisted_runs = sim_cfg.runs * sum(bool(assisted or a_rea) for _, _, assisted, a_rea in methods)
    with Progress(len(methods) * sim_cfg.runs, "simulated runs", ctx.config.task.progress,
                  costly=assisted_runs) as bar:  # a run without a metric costs milliseconds
        for label, name, assisted, a_rea in methods:
            for run in range(sim_cfg.runs):
                sim = SimulatedTraining(gt, sim_cfg.dataset, sim_cfg.budget_seconds)
                rng = np.random.default_rng(np.random.SeedSequence([ctx.seed, run]))
                uses_metric = assisted or a_rea
                used = a_rea_cache if a_rea else cache
                algo_cfg = _with(sim_cfg, init_pool=sim_cfg.init_pool if a_rea else 0)
                sctx = SimContext(ctx.space, sim, rng, algo_cfg, used if uses_metric else None)
                before = set(used.values)
                SIMULATED_ALGOS.get(name)(sctx)
                found, seen = sctx.best()
                touched = set(used.values) - before
                rows.append({"method": label, "run": run, "arch": found,
                             "searched_valid": seen,
                             **{f"{c}_test": float(gt.accuracy([found], c)[0]) for c in gt.datasets},
                             f"{sim_cfg.dataset}_valid": _maybe(gt, found, f"{sim_cfg.dataset}_valid"),
                             "clock_seconds": sim.spent, "evaluations": sim.evaluations,
                             "metric_archs_new": len(touched) if uses_metric else 0,
                             "metric": used.name if uses_metric else "",
                             "metric_seconds_new": sum(used.seconds[a] for a in touched) if uses_metric else 0.0})
                bar.step(cached=not touched, free=not uses_metric,
                         note=f"{label} run {run + 1}/{sim_cfg.runs}, {len(cache.values)} archs scored by the metric")
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
        "searched_on": sim_cfg.dataset, "methods": sim_cfg.methods, "pool_size": sim_cfg.pool_size,
        "results": {r["method"]: {k: r[k] for k in table.columns if k != "method"} for r in table.to_dict("records")},
        "a_rea_metric": a_rea_name,
        "metric_cost": {"archs_scored": len(cache.values), "archs_failed": len(cache.failures),
                        "device_seconds": float(sum(cache.seconds.values())),
                        **({f"{a_rea_name}_archs_scored": len(a_rea_cache.values),
                            f"{a_rea_name}_device_seconds": float(sum(a_rea_cache.seconds.values()))}
                           if a_rea_cache is not cache else {}),
                        "note": "the metric's cost is reported beside the simulated clock, not charged to it"},
        "ground_truth": gt.provenance(), **scorer.description(0),
    }
    summary = out.summary("simulated_search", payload, {f"{m}/cifar10_test": payload["results"][m]["cifar10_test_mean"]
                                                        for m in payload["results"]}, scorer.conventions)
    out.figure("simulated_search", lambda: results_figure(frame, f"{sim_cfg.runs} runs, {sim_cfg.budget_seconds:.0f} s "
                                                                 f"of recorded training each, searched on "
                                                                 f"{sim_cfg.dataset}; metric {metric_name}"))
    print(markdown(table[["method", *[c for c in table.columns if c.endswith("_mean") or c.startswith("published")]]],
                   2))
    return summary


def _with(cfg: Any, **changes: Any) -> Any:
    return dataclasses.replace(cfg, **changes)


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


def simulated_rows(summary: dict[str, Any], base: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**base, "method": method, **{k: v for k, v in values.items() if k.endswith("_mean")}}
            for method, values in summary["results"].items()]


def simulated_section(frame: pd.DataFrame, out_dir: Path) -> list[str]:
    columns = [c for c in frame.columns if c.endswith("_mean")]
    table = aggregate(frame, ["group", "method"], columns)
    write_csv(table, out_dir / "simulated_search_summary.csv")
    return ["## Simulated searches (mean accuracy %, mean over jobs)", "", markdown(table, 2), ""]


register_task("simulated_search", simulated_rows, simulated_section)(run_simulated_search)
