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
from ntkexp.search import SEARCH_ALGOS, Guide, MetricGuide, OracleGuide, SearchContext
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


def search_candidates(ctx: RunContext, gt: Any) -> list[str] | None:
    """The archs a search may draw: the benchmark's (when ``restrict_to_benchmark``, or by default when the ground
    truth does not cover the space), else None (the whole space)."""
    restrict = ctx.config.search_algo.restrict_to_benchmark
    if restrict is None:
        restrict = ctx.space.size is None or len(gt) < ctx.space.size
    if restrict:
        log.info("searching within the %d archs the benchmark has accuracy for", len(gt))
    return gt.archs() if restrict else None


def guided_run(ctx: RunContext, label: str, guide: Guide, budget: int | None, candidates: list[str] | None
               ) -> tuple[SearchContext, dict[str, Any]]:
    """One search by the configured algorithm under ``guide`` with ``budget`` evaluations: its context and record
    (the found arch, its accuracies, the guide's cost and the algorithm's details)."""
    gt, key = ctx.require_ground_truth(), ctx.accuracy_key
    cfg = dataclasses.replace(ctx.config.search_algo, budget_evals=budget)
    sctx = SearchContext(ctx.space, guide, cfg, ctx.seed, gt, key, candidates, label, ctx.config.task.progress)
    found = SEARCH_ALGOS.get(cfg.name)(sctx)
    guide.check_failures(f"task=search guided by {label}")
    record = {"arch": found, "accuracy": {c: float(gt.accuracy([found], c)[0]) for c in gt.datasets},
              **guide.summary(), **sctx.details}
    log.info("%s found %s (%s %.2f%%) after %d evaluations", label, found, key, record["accuracy"][key],
             guide.cost.evaluations)
    return sctx, record


def random_baseline(ctx: RunContext, gt: Any, candidates: list[str] | None, made: int) -> tuple[dict[str, float], int]:
    """The naive result: the mean accuracy of as many uniformly drawn archs as the guided search evaluated."""
    rng = np.random.default_rng(ctx.seed)
    pool = candidates if candidates is not None else [ctx.space.sample(rng) for _ in range(made)]
    draws = [pool[i] for i in rng.choice(len(pool), size=min(made, len(pool)), replace=False)]
    return {c: float(np.nanmean(gt.accuracy(draws, c))) for c in gt.datasets}, len(draws)


def print_search(runs: dict[str, dict[str, Any]], key: str, main_label: str, naive: dict[str, float], n_draws: int,
                 best_possible: dict[str, float], cost: dict[str, Any]) -> None:
    print(f"found: {runs[main_label]['arch']}")
    for label, run in runs.items():
        print(f"{label}: {key} accuracy {run['accuracy'][key]:.2f}% after {run['evaluations']} evaluations, "
              f"{run['score_seconds']:.1f} s of scoring")
    print(f"random arch (mean of {n_draws}): {naive[key]:.2f}%; best in benchmark: {best_possible[key]:.2f}%")
    if cost.get("speedup_over_training") is not None:
        print(f"cost: {cost['score_seconds']:.1f} s of scoring on {cost['device']}; training the "
              f"{cost['candidates']} candidates would take {cost['benchmark_training_seconds']:.0f} s "
              f"({cost['speedup_over_training']:.0f}x) by the benchmark's record")


def run_search(ctx: RunContext, out: RunOutput) -> dict[str, Any]:
    gt, key, algo_cfg = ctx.require_ground_truth(), ctx.accuracy_key, ctx.config.search_algo
    if ctx.config.archs or ctx.config.archs_file:
        raise ValueError("task=search draws its own archs: archs/archs_file do not apply (the budget is "
                         "search_algo.budget_evals)")
    if algo_cfg.budget_evals is None and algo_cfg.budget_score_seconds is None:
        raise ValueError("task=search needs a budget: search_algo.budget_evals or search_algo.budget_score_seconds")
    log.info("task=search evaluates up to search_algo.budget_evals=%s archs chosen by %s (n_archs is not used)",
             algo_cfg.budget_evals, algo_cfg.name)
    primary, candidates = ctx.selection.primary, search_candidates(ctx, gt)
    scorer = ArchScorer(ctx, expand([primary]))  # only what the guide needs
    main_label, oracle_label = f"{algo_cfg.name}+{primary}", f"{algo_cfg.name}+oracle"
    guided, found = guided_run(ctx, main_label, MetricGuide(scorer, primary), algo_cfg.budget_evals, candidates)
    made = len(guided.evaluated)
    oracle, by_oracle = guided_run(ctx, oracle_label, OracleGuide(gt, key), made, candidates)
    runs = {main_label: found, oracle_label: by_oracle}
    naive, n_draws = random_baseline(ctx, gt, candidates, made)
    best_possible = {c: float(gt.frame[c].max()) for c in gt.datasets}
    cost = search_cost(ctx, gt, guided, found["score_seconds"])
    curve = pd.concat([pd.DataFrame(c.curve).assign(run=label) for label, c in ((main_label, guided),
                                                                                 (oracle_label, oracle))],
                      ignore_index=True)
    out.table("search_curve", curve)
    out.training_curves(scorer.curves)
    payload = {
        "algorithm": algo_cfg.name, "metric": primary, "components": list(scorer.selection.metrics),
        "dataset_key": key, "found": found, "oracle": by_oracle,
        "random_arch_mean_accuracy": naive, "random_arch_draws": n_draws, "benchmark_best_accuracy": best_possible,
        "baseline_budget": f"the oracle and the random draw get as many evaluations as the guided search made ({made})",
        "restricted_to_benchmark": candidates is not None, "search_algo": dataclasses.asdict(algo_cfg), "cost": cost,
    }
    summary = out.summary("search", payload, {
        "found_accuracy": found["accuracy"][key], "oracle_accuracy": by_oracle["accuracy"][key],
        "random_accuracy": naive[key], "search_score_seconds": found["score_seconds"],
        "evaluations": found["evaluations"]}, scorer)
    title = f"{algo_cfg.name} on {ctx.space.label()} | {key} | metric {primary} | seed {ctx.seed}"
    out.figure("search_curve", lambda: curves_figure(curve, title))
    print_search(runs, key, main_label, naive, n_draws, best_possible, cost)
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
              search_settings=("name", "budget_evals", "budget_score_seconds", "derive", "restrict_to_benchmark"))(run_search)
