"""``task=kernel_evolution``: how the NTK and its metrics move during the first epochs of training.

For each arch (chosen from accuracy bands, or sampled), trains with the configured protocol and measures, at every
epoch in ``task.track_epochs``, the metrics, corr(Theta_0, Theta_t) and the relative change of the kernel. Writes
``evolution.csv`` (one row per arch and epoch), ``rank_correlation.csv`` (Kendall/Spearman of every metric at every
epoch against final accuracy), ``summary.json`` and the figures ``kernel_evolution.png`` (the paper's Fig. 5),
``metrics_by_band.png`` (Fig. 2) and ``rank_correlation.png`` (Fig. 6).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from ntkexp.io import atomic_write
from ntkexp.data import require_training_set
from ntkexp.loggers import ExperimentLogger
from ntkexp.stats import correlate
from ntkexp.plotting import pyplot, save_figure
from ntkexp.store import config_key
from ntkexp.tasks.common import SCORE_SCHEMA, ArchScorer, build_setup, direction_of, progress, versions, write_json
from ntkexp.tasks.correlate import choose_archs

log = logging.getLogger("ntkexp")


def band_archs(accuracy: pd.Series, bands: dict[str, list[float]], per_band: int, seed: int) -> list[tuple[str, str]]:
    """(arch, band) pairs: ``per_band`` archs drawn from each accuracy-quantile range [lo, hi]."""
    rng = np.random.default_rng(seed)
    out: list[tuple[str, str]] = []
    for band, (lo, hi) in bands.items():
        if not 0.0 <= lo < hi <= 1.0:
            raise ValueError(f"band {band!r}: quantile range [{lo}, {hi}] must satisfy 0 <= lo < hi <= 1")
        q_lo, q_hi = accuracy.quantile(lo), accuracy.quantile(hi)
        pool = accuracy[(accuracy >= q_lo) & (accuracy <= q_hi)].index.tolist()
        if len(pool) < per_band:
            raise ValueError(f"band {band!r} holds only {len(pool)} archs; lower task.per_band ({per_band})")
        out.extend((pool[i], band) for i in sorted(rng.choice(len(pool), size=per_band, replace=False)))
    return out


def plot_all(frame: pd.DataFrame, ranks: pd.DataFrame, names: list[str], run_dir: Path, note: str) -> list[Path]:
    plt = pyplot()
    paths = []
    by = "band" if frame["band"].nunique() > 1 else None
    groups = list(frame.groupby(by)) if by else [("all", frame)]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for label, part in groups:
        stats_ = part.groupby("epoch")[["kernel_corr", "kernel_rel_diff"]].agg(["mean", "std"])
        for ax, col in zip(axes, ("kernel_corr", "kernel_rel_diff")):
            ax.errorbar(stats_.index, stats_[(col, "mean")], yerr=stats_[(col, "std")], marker="o", capsize=3,
                        label=str(label))
    axes[0].set_ylabel("corr(Theta_0, Theta_t)")
    axes[1].set_ylabel("||Theta_t - Theta_0|| / ||Theta_0||")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.suptitle(f"kernel evolution | {note}", fontsize=8)
    paths.append(save_figure(fig, run_dir / "kernel_evolution.png"))

    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        for label, part in groups:
            mean = part.groupby("epoch")[name].mean()
            ax.plot(mean.index, mean.values, marker="o", label=str(label))
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.suptitle(f"metrics during training, mean per accuracy band | {note}", fontsize=8)
    paths.append(save_figure(fig, run_dir / "metrics_by_band.png"))

    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    for name in names:
        part = ranks[ranks["metric"] == name]
        ax.plot(part["epoch"], part["kendall_tau"], marker="o", label=name)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("epoch t")
    ax.set_ylabel("Kendall tau with final accuracy")
    ax.legend(fontsize=7)
    ax.set_title(note, fontsize=7)
    paths.append(save_figure(fig, run_dir / "rank_correlation.png"))
    return paths


def run_kernel_evolution(cfg: DictConfig, run_dir: Path, logger: ExperimentLogger) -> dict[str, Any]:
    setup = build_setup(cfg)
    assert setup.ground_truth is not None
    key = setup.data_cfg.benchmark_key
    epochs = sorted(set(int(e) for e in cfg.task.track_epochs) | {0})
    if min(epochs) < 0:
        raise ValueError(f"task.track_epochs must be >= 0, got {list(cfg.task.track_epochs)}")
    if max(epochs) > 0:
        require_training_set(setup.data_cfg, "task=kernel_evolution")
    if cfg.task.select == "bands":
        acc = setup.ground_truth.frame[key].dropna()
        chosen = band_archs(acc, dict(cfg.task.bands), int(cfg.task.per_band), int(cfg.seed))
    elif cfg.task.select == "sample":
        chosen = [(a, "all") for a in choose_archs(cfg, setup)]
    else:
        raise ValueError(f"task.select must be 'bands' or 'sample', got {cfg.task.select!r}")
    scorer = ArchScorer(setup)
    rows: list[dict[str, Any]] = []
    for arch, band in progress(chosen, "training", bool(cfg.task.progress)):
        store_key = config_key({"schema": SCORE_SCHEMA, "task": "kernel_evolution", "arch": arch, "epochs": epochs,
                                "metrics": scorer.metric_names, **scorer.conventions,
                                "training": scorer.training_conventions})
        cached = setup.store.get(store_key)
        if cached is None:
            try:
                records = scorer.tracked(arch, epochs).records
                setup.store.put(store_key, {"records": records})
            except Exception as err:  # one arch never ends the study
                log.warning("arch %s failed: %s: %s", arch, type(err).__name__, err)
                records = [{"epoch": e, **{n: float("nan") for n in scorer.metric_names},
                            "flags": f"error:{type(err).__name__}"} for e in epochs]
        else:
            records = cached["records"]
        for rec in records:
            if rec["epoch"] in epochs:
                rows.append({"arch": arch, "band": band, **rec})
    frame = pd.DataFrame(rows)
    frame["accuracy"] = setup.ground_truth.accuracy(list(frame["arch"]), key)
    with atomic_write(run_dir / "evolution.csv") as tmp:
        frame.to_csv(tmp, index=False)

    top_k = [float(k) for k in cfg.task.top_k]
    rank_rows = []
    names = scorer.metric_names
    for epoch, part in frame.groupby("epoch"):
        for name in names:
            rank_rows.append({"epoch": int(epoch), "metric": name,
                              **correlate(part[name].to_numpy(), part["accuracy"].to_numpy(), direction_of(name), top_k)})
    ranks = pd.DataFrame(rank_rows)
    with atomic_write(run_dir / "rank_correlation.csv") as tmp:
        ranks.to_csv(tmp, index=False)
    note = (f"{setup.space.describe()} | {setup.data_cfg.name} ({len(setup.datamodule.train_tensors[1])} train "
            f"images) | bn={setup.ntk_cfg.bn_mode} batch={setup.batch_size} | {len(chosen)} archs")
    summary = {
        "task": "kernel_evolution", "n_archs": len(chosen), "epochs": epochs, "note": note,
        "kendall_tau": {n: {int(r.epoch): r.kendall_tau for r in ranks[ranks.metric == n].itertuples()}
                        for n in names},
        "kernel_corr_mean": frame.groupby("epoch")["kernel_corr"].mean().to_dict(),
        "kernel_rel_diff_mean": frame.groupby("epoch")["kernel_rel_diff"].mean().to_dict(),
        "conventions": {**scorer.conventions, "training": scorer.training_conventions},
        "versions": versions(), "config": OmegaConf.to_container(cfg, resolve=True),
    }
    write_json(run_dir / "summary.json", summary)
    logger.log_table("evolution", frame)
    logger.log_table("rank_correlation", ranks)
    for r in ranks.itertuples():
        logger.log_metrics({f"{r.metric}/kendall_tau": r.kendall_tau, f"{r.metric}/spearman_rho": r.spearman_rho,
                            "epoch": r.epoch})
    if cfg.task.plot:
        for path in plot_all(frame, ranks, names, run_dir, note):
            logger.log_image(path.stem, path)
    print(ranks.pivot(index="epoch", columns="metric", values="kendall_tau").round(4).to_string())
    setup.store.close()
    return summary
