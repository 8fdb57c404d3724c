"""``task=search``: find an arch with a search algorithm guided only by the metric, and report it next to the same
algorithm guided by the benchmark accuracy itself (oracle) and the naive result (a random arch).

The metric is ``metric.names[0]``; when that is a combination (``tegnas``, ``ntk_score``) its components are ranked
within every compared set and combined by ``search_algo.rule``. Writes ``search_curve.csv`` (best-so-far accuracy vs
evaluations and compute seconds, per run), ``search_curve.png`` and ``summary.json`` (found arch, its accuracy on
every data set of the benchmark, search cost).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from ntkexp.io import atomic_write
from ntkexp.loggers import ExperimentLogger
from ntkexp.metrics import COMBINATIONS
from ntkexp.plotting import pyplot, save_figure
from ntkexp.search import SEARCH_ALGOS, SearchAlgoConfig, SearchContext, SearchScorer
from ntkexp.tasks.common import ArchScorer, build_setup, to_dataclass, versions, write_json

log = logging.getLogger("ntkexp")


def plot_curves(curve: pd.DataFrame, path: Path, title: str) -> Path:
    fig, axes = pyplot().subplots(1, 2, figsize=(9, 3.6))
    for run, part in curve.groupby("run", sort=False):
        axes[0].step(part["evaluations"], part["best_accuracy"], where="post", label=str(run))
        if part["score_seconds"].max() > 0:
            axes[1].step(part["score_seconds"], part["best_accuracy"], where="post", label=str(run))
    axes[0].set_xlabel("archs evaluated")
    axes[1].set_xlabel("scoring compute (s)")
    for ax in axes:
        ax.set_ylabel("accuracy of the best arch so far (%)")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=8)
    return save_figure(fig, path)


def run_search(cfg: DictConfig, run_dir: Path, logger: ExperimentLogger) -> dict[str, Any]:
    setup = build_setup(cfg)
    gt = setup.ground_truth
    assert gt is not None
    key = setup.data_cfg.benchmark_key
    algo_cfg = to_dataclass(SearchAlgoConfig, cfg.search_algo)
    algorithm = SEARCH_ALGOS.get(algo_cfg.name)
    primary = setup.metric_names[0]
    names, rule = (list(COMBINATIONS[primary][0]), COMBINATIONS[primary][1]) if primary in COMBINATIONS \
        else ([primary], algo_cfg.rule)
    restrict = algo_cfg.restrict_to_benchmark
    if restrict is None:
        restrict = setup.space.size is None or len(gt) < setup.space.size
    candidates = gt.archs() if restrict else None
    if restrict:
        log.info("searching within the %d archs the benchmark has accuracy for", len(gt))

    scorer = ArchScorer(setup)
    runs: dict[str, dict[str, Any]] = {}
    curves = []
    for label, search_scorer in (
        (f"{algo_cfg.name}+{primary}", SearchScorer(scorer, names, rule)),
        (f"{algo_cfg.name}+oracle", SearchScorer(None, ["oracle"], ground_truth=gt, accuracy_key=key)),
    ):
        ctx = SearchContext(setup.space, search_scorer, algo_cfg, int(cfg.seed), gt, key, candidates, label)
        found = algorithm(ctx)
        runs[label] = {"arch": found, "accuracy": {c: float(gt.accuracy([found], c)[0]) for c in gt.columns},
                       **search_scorer.summary(), "scored_archs": search_scorer.calls}
        if hasattr(ctx, "policy_argmax"):
            runs[label]["policy_argmax"] = ctx.policy_argmax  # type: ignore[attr-defined]
        curves.append(pd.DataFrame(ctx.curve).assign(run=label))
        log.info("%s found %s (%s %.2f%%) after %d evaluations", label, found, key, runs[label]["accuracy"][key],
                 search_scorer.cost.evaluations)
    # the naive result: a uniformly random arch (the mean over as many random draws as the budget allows)
    rng = np.random.default_rng(int(cfg.seed))
    pool = candidates if candidates is not None else [setup.space.sample(rng) for _ in range(algo_cfg.budget_evals)]
    draws = [pool[i] for i in rng.choice(len(pool), size=min(algo_cfg.budget_evals, len(pool)), replace=False)]
    naive = {c: float(np.nanmean(gt.accuracy(draws, c))) for c in gt.columns}
    best_possible = {c: float(gt.frame[c].max()) for c in gt.columns}

    curve = pd.concat(curves, ignore_index=True)
    with atomic_write(run_dir / "search_curve.csv") as tmp:
        curve.to_csv(tmp, index=False)
    main_label = f"{algo_cfg.name}+{primary}"
    summary = {
        "task": "search", "algorithm": algo_cfg.name, "metric": primary, "components": names, "rule": rule,
        "dataset_key": key, "found": runs[main_label], "oracle": runs[f"{algo_cfg.name}+oracle"],
        "random_arch_mean_accuracy": naive, "benchmark_best_accuracy": best_possible,
        "restricted_to_benchmark": bool(restrict), "search_algo": OmegaConf.to_container(cfg.search_algo),
        "conventions": scorer.conventions, "device": str(setup.device), "versions": versions(),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    write_json(run_dir / "summary.json", summary)
    logger.log_summary({"found_accuracy": runs[main_label]["accuracy"][key],
                        "oracle_accuracy": summary["oracle"]["accuracy"][key], "random_accuracy": naive[key],
                        "search_score_seconds": runs[main_label]["score_seconds"],
                        "evaluations": runs[main_label]["evaluations"]})
    logger.log_table("search_curve", curve)
    if cfg.task.plot:
        title = f"{algo_cfg.name} on {setup.space.describe()} | {key} | metric {primary} | seed {cfg.seed}"
        logger.log_image("search_curve", plot_curves(curve, run_dir / "search_curve.png", title))
    print(f"found: {runs[main_label]['arch']}")
    for label, run in runs.items():
        print(f"{label}: {key} accuracy {run['accuracy'][key]:.2f}% after {run['evaluations']} evaluations, "
              f"{run['score_seconds']:.1f} s of scoring")
    print(f"random arch (mean of {len(draws)}): {naive[key]:.2f}%; best in benchmark: {best_possible[key]:.2f}%")
    setup.store.close()
    return summary
