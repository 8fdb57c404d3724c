"""``task=search``: find an arch with a search algorithm guided only by the metric, and report it next to the same
algorithm guided by the benchmark accuracy itself (oracle) and the naive result (random archs).

The guide is ``metric.names[0]``: a metric, or a combination (``tegnas``, ``ntk_score``) whose components are ranked
within every compared set by its own rule. Only what the guide needs is computed (and charged). The baselines get
the same number of evaluations as the metric-guided search made (fewer than ``budget_evals`` when a time budget
stopped it). Writes ``search_curve.csv`` (best-so-far accuracy vs evaluations and compute seconds, per run),
``search_curve.png`` and ``summary.json`` (found arch, its accuracy on every data set of the benchmark, the cost).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
import pandas as pd

from ntkexp.metrics import expand
from ntkexp.plotting import pyplot
from ntkexp.scoring import ArchScorer, RunContext, device_name
from ntkexp.search import SEARCH_ALGOS, Guide, MetricScorer, OracleScorer, SearchContext
from ntkexp.tasks.base import RunOutput, register_task

log = logging.getLogger("ntkexp")


def curves_figure(curve: pd.DataFrame, title: str) -> Any:
    fig, axes = pyplot().subplots(1, 2, figsize=(9, 3.8))
    for run, part in curve.groupby("run", sort=False):
        axes[0].step(part["evaluations"], part["best_accuracy"], where="post", label=str(run))
        if part["score_seconds"].max() > 0:
            axes[1].step(part["score_seconds"], part["best_accuracy"], where="post", label=str(run))
    axes[0].set_xlabel("archs evaluated")
    axes[1].set_xlabel("scoring compute (s)")
    for ax in axes:
        # the guide's pick so far (its best score), not the most accurate arch seen: it can go down when a
        # better-scored, less accurate arch appears
        ax.set_ylabel("accuracy of the top-scored arch so far (%)", fontsize=8)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=8)
    return fig


def run_search(ctx: RunContext, out: RunOutput) -> dict[str, Any]:
    gt = ctx.require_ground_truth()
    key = ctx.accuracy_key
    algo_cfg = ctx.config.search_algo
    algorithm = SEARCH_ALGOS.get(algo_cfg.name)
    if ctx.config.archs or ctx.config.archs_file:
        raise ValueError("task=search draws its own archs: archs/archs_file do not apply (the budget is "
                         "search_algo.budget_evals)")
    log.info("task=search evaluates up to search_algo.budget_evals=%d archs chosen by %s (n_archs is not used)",
             algo_cfg.budget_evals, algo_cfg.name)
    primary = ctx.selection.primary
    restrict = algo_cfg.restrict_to_benchmark
    if restrict is None:
        restrict = ctx.space.size is None or len(gt) < ctx.space.size
    candidates = gt.archs() if restrict else None
    if restrict:
        log.info("searching within the %d archs the benchmark has accuracy for", len(gt))

    scorer = ArchScorer(ctx, expand([primary]))  # only what the guide needs
    runs: dict[str, dict[str, Any]] = {}
    curves = []

    def search(label: str, guide: Guide, budget: int) -> SearchContext:
        cfg = dataclasses.replace(algo_cfg, budget_evals=budget)
        sctx = SearchContext(ctx.space, guide, cfg, ctx.seed, gt, key, candidates, label, ctx.config.task.progress)
        found = algorithm(sctx)
        guide.check_failures(f"task=search guided by {label}")
        runs[label] = {"arch": found, "accuracy": {c: float(gt.accuracy([found], c)[0]) for c in gt.datasets},
                       **guide.summary(), **sctx.details}
        curves.append(pd.DataFrame(sctx.curve).assign(run=label))
        log.info("%s found %s (%s %.2f%%) after %d evaluations", label, found, key, runs[label]["accuracy"][key],
                 guide.cost.evaluations)
        return sctx

    main_label, oracle_label = f"{algo_cfg.name}+{primary}", f"{algo_cfg.name}+oracle"
    guided = search(main_label, MetricScorer(scorer, primary), algo_cfg.budget_evals)
    made = len(guided.evaluated)
    search(oracle_label, OracleScorer(gt, key), made)
    # the naive result: the mean accuracy of as many uniformly drawn archs as the guided search evaluated
    rng = np.random.default_rng(ctx.seed)
    pool = candidates if candidates is not None else [ctx.space.sample(rng) for _ in range(made)]
    draws = [pool[i] for i in rng.choice(len(pool), size=min(made, len(pool)), replace=False)]
    naive = {c: float(np.nanmean(gt.accuracy(draws, c))) for c in gt.datasets}
    best_possible = {c: float(gt.frame[c].max()) for c in gt.datasets}

    cost = search_cost(ctx, gt, guided, runs[main_label]["score_seconds"])
    curve = pd.concat(curves, ignore_index=True)
    out.table("search_curve", curve)
    out.training_curves(scorer.curves)
    payload = {
        "algorithm": algo_cfg.name, "metric": primary, "components": list(scorer.selection.metrics),
        "dataset_key": key, "found": runs[main_label], "oracle": runs[oracle_label],
        "random_arch_mean_accuracy": naive, "random_arch_draws": len(draws), "benchmark_best_accuracy": best_possible,
        "baseline_budget": f"the oracle and the random draw get as many evaluations as the guided search made ({made})",
        "restricted_to_benchmark": bool(restrict), "search_algo": dataclasses.asdict(algo_cfg), "cost": cost,
    }
    summary = out.summary("search", payload, {
        "found_accuracy": runs[main_label]["accuracy"][key], "oracle_accuracy": runs[oracle_label]["accuracy"][key],
        "random_accuracy": naive[key], "search_score_seconds": runs[main_label]["score_seconds"],
        "evaluations": runs[main_label]["evaluations"]}, scorer)
    title = f"{algo_cfg.name} on {ctx.space.label()} | {key} | metric {primary} | seed {ctx.seed}"
    out.figure("search_curve", lambda: curves_figure(curve, title))
    print(f"found: {runs[main_label]['arch']}")
    for label, run in runs.items():
        print(f"{label}: {key} accuracy {run['accuracy'][key]:.2f}% after {run['evaluations']} evaluations, "
              f"{run['score_seconds']:.1f} s of scoring")
    print(f"random arch (mean of {len(draws)}): {naive[key]:.2f}%; best in benchmark: {best_possible[key]:.2f}%")
    if cost.get("speedup_over_training") is not None:
        print(f"cost: {cost['score_seconds']:.1f} s of scoring on {cost['device']}; training the "
              f"{cost['candidates']} candidates would take {cost['benchmark_training_seconds']:.0f} s "
              f"({cost['speedup_over_training']:.0f}x) by the benchmark's record")
    return summary


def search_cost(ctx: RunContext, gt: Any, guided: SearchContext, score_seconds: float) -> dict[str, Any]:
    """The guided search's cost in seconds of one device, next to the benchmark's recorded training time of the archs
    it evaluated (what a search that trains each candidate would pay; comparable with the LGA paper's Table 2)."""
    cost: dict[str, Any] = {"device": device_name(ctx.device), "score_seconds": score_seconds,
                            "candidates": len(guided.evaluated)}
    recorded = gt.training_seconds(guided.evaluated, ctx.accuracy_key)
    if recorded is not None:
        seconds, column = recorded
        cost.update(benchmark_training_seconds=seconds, benchmark_training_record=f"200 x {column}",
                    speedup_over_training=seconds / score_seconds if score_seconds > 0 else None)
    return cost


register_task("search",
              search_knobs=("name", "budget_evals", "budget_seconds", "derive", "restrict_to_benchmark"))(run_search)
