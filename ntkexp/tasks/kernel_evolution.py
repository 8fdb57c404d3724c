"""``task=kernel_evolution``: how the NTK and its metrics move during the first epochs of training.

For each arch (chosen from accuracy bands, or sampled), trains with the configured protocol and measures, at every
epoch in ``task.track_epochs``, the metrics, corr(Theta_0, Theta_t) and the relative change of the kernel. Writes
``evolution.csv`` (one row per arch and epoch, with t in optimiser steps and images seen), ``rank_correlation.csv``
(Kendall/Spearman of every metric at every epoch against final accuracy, with 95 % bootstrap intervals over the
archs), ``summary.json`` and the figures (against optimiser steps) ``kernel_evolution.png`` (the paper's Fig. 5),
``metrics_by_band.png`` (Fig. 2) and ``rank_correlation.png`` (Fig. 6).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import logging
import textwrap
from typing import Any

import pandas as pd

from ntkexp.config import TaskConfig
from ntkexp.metrics import direction_of
from ntkexp.plotting import pyplot
from ntkexp.scoring import ArchScorer, NothingScored, Progress, RunContext, band_archs, choose_archs
from ntkexp.stats import bootstrap_interval, correlate
from ntkexp.tasks.base import DashboardProgress, RunOutput, register_task, top_k_fractions


log = logging.getLogger("ntkexp")


@dataclass
class KernelEvolutionConfig(TaskConfig):
    """``task=kernel_evolution``: the epochs measured (``track_epochs``); which archs (``select``: ``bands`` of the
    accuracy quantiles, ``per_band`` each, or a ``sample`` as correlate draws it, optionally from one ``decile``);
    ``top_k`` for the correlations at each epoch."""

    track_epochs: list[int] = field(default_factory=lambda: [0, 1, 3, 5, 10])
    select: str = "bands"  # bands | sample
    bands: dict[str, list[float]] = field(default_factory=lambda: {"high": [0.9, 1.0], "mid": [0.45, 0.55],
                                                                   "low": [0.0, 0.1]})
    per_band: int = 5
    top_k: list[float] = field(default_factory=lambda: [0.1])
    decile: int | None = None
    n_deciles: int = 10


def _groups(frame: pd.DataFrame) -> list[tuple[Any, pd.DataFrame]]:
    return list(frame.groupby("band")) if frame["band"].nunique() > 1 else [("all", frame)]


STEPS_LABEL = "optimiser steps t"


def _title(text: str, width: int = 120) -> str:
    return textwrap.fill(text, width)


def kernel_figure(frame: pd.DataFrame, note: str) -> Any:
    """corr(Theta_0, Theta_t) and the relative change per step: median over the archs, bars from the 25th to the 75th
    percentile (the change is heavy-tailed, so a mean and std would mislead)."""
    fig, axes = pyplot().subplots(1, 2, figsize=(9, 4.2))
    for label, part in _groups(frame):
        for ax, col in zip(axes, ("kernel_corr", "kernel_rel_diff")):
            q = part.groupby("step")[col].quantile([0.25, 0.5, 0.75]).unstack()
            ax.errorbar(q.index, q[0.5], yerr=[q[0.5] - q[0.25], q[0.75] - q[0.5]], marker="o", capsize=3,
                        label=str(label))
    axes[0].set_ylabel("corr(Theta_0, Theta_t)")
    axes[1].set_ylabel("||Theta_t - Theta_0|| / ||Theta_0||")
    for ax in axes:
        ax.set_xlabel(STEPS_LABEL)
        ax.legend(fontsize=7)
    fig.suptitle(_title(f"kernel evolution (median, 25-75 % of archs) | {note}"), fontsize=7)
    fig.tight_layout()
    return fig


def metrics_figure(frame: pd.DataFrame, names: list[str], note: str) -> Any:
    fig, axes = pyplot().subplots(1, len(names), figsize=(3.6 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        for label, part in _groups(frame):
            mean = part.groupby("step")[name].mean()
            ax.plot(mean.index, mean.values, marker="o", label=str(label))
        ax.set_title(name)
        ax.set_xlabel(STEPS_LABEL)
        ax.legend(fontsize=7)
    fig.suptitle(_title(f"metrics during training, mean per accuracy band | {note}", 40 * len(names)), fontsize=7)
    fig.tight_layout()
    return fig


def tau_table(ranks: pd.DataFrame, names: list[str], note: str) -> str:
    """The run's result on stdout: what was run, then Kendall tau (95 % bootstrap interval) of each metric per t."""
    lines = [note, "Kendall tau with final accuracy [95 % bootstrap interval], per training step t:"]
    width = max(len(n) for n in names) + 2
    steps = sorted(ranks["step"].unique())
    lines.append(f"{'t (steps)':>10}  " + "".join(f"{n:<{width + 18}}" for n in names).rstrip())
    for step in steps:
        cells = []
        for name in names:
            row = ranks[(ranks["step"] == step) & (ranks["metric"] == name)]
            cells.append(f"{row['kendall_tau'].iloc[0]:+.3f} [{row['kendall_lo'].iloc[0]:+.2f}, "
                         f"{row['kendall_hi'].iloc[0]:+.2f}]" if len(row) else "-")
        lines.append(f"{int(step):>10}  " + "".join(f"{c:<{width + 18}}" for c in cells).rstrip())
    return "\n".join(lines)


def rank_figure(ranks: pd.DataFrame, names: list[str], note: str) -> Any:
    fig, ax = pyplot().subplots(figsize=(5.2, 3.8))
    for name in names:
        part = ranks[ranks["metric"] == name]
        err = [(part["kendall_tau"] - part["kendall_lo"]).clip(lower=0),
               (part["kendall_hi"] - part["kendall_tau"]).clip(lower=0)]
        ax.errorbar(part["step"], part["kendall_tau"], yerr=err, marker="o", capsize=3, label=name)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel(STEPS_LABEL)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("Kendall tau with final accuracy (95% bootstrap)")
    ax.legend(fontsize=7)
    ax.set_title(_title(note, 80), fontsize=6)
    fig.tight_layout()
    return fig


def rank_row(part: pd.DataFrame, name: str, epoch: int, top_k: list[float], seed: int) -> dict[str, Any]:
    """Kendall/Spearman of metric ``name`` against accuracy over the archs of ``part`` (one epoch), with 95 %
    bootstrap intervals over the archs, and t in steps and images."""
    values, accuracy, direction = part[name].to_numpy(), part["accuracy"].to_numpy(), direction_of(name)
    row: dict[str, Any] = {"epoch": epoch, "step": int(part["step"].iloc[0]), "images": int(part["images"].iloc[0]),
                           "metric": name, **correlate(values, accuracy, direction, top_k)}
    for stat, short in (("kendall_tau", "kendall"), ("spearman_rho", "spearman")):
        row[f"{short}_lo"], row[f"{short}_hi"] = bootstrap_interval(values, accuracy, direction, stat, seed=seed)
    return row


def diverged_archs(frame: pd.DataFrame) -> dict[str, int]:
    """arch -> the step its training loss first became non-finite (from the records' ``diverged@<step>`` flags)."""
    out: dict[str, int] = {}
    for arch, flags in zip(frame["arch"], frame.get("flags", pd.Series([""] * len(frame)))):
        for flag in str(flags).split(";"):
            if flag.startswith("diverged@"):
                out[arch] = min(out.get(arch, 10**12), int(flag.split("@")[1]))
    return out


def _chosen_archs(ctx: RunContext) -> list[tuple[str, str]]:
    """(arch, band) pairs: per accuracy band (``task.select=bands``) or a sample (``sample``)."""
    task, gt = ctx.config.task, ctx.require_ground_truth()
    if task.select == "bands":
        return band_archs(gt.frame[ctx.accuracy_key].dropna(), dict(task.bands), task.per_band, ctx.seed)
    if task.select == "sample":
        return [(a, "all") for a in choose_archs(ctx, decile=task.decile, n_deciles=task.n_deciles)]
    raise ValueError(f"task.select must be 'bands' or 'sample', got {task.select!r}")


def track_archs(ctx: RunContext, scorer: ArchScorer, chosen: list[tuple[str, str]], epochs: list[int],
                progress: DashboardProgress) -> pd.DataFrame:
    """Every metric, the kernel's correlation and relative change at each of ``epochs`` for each arch (one row per
    arch and epoch, with its band, seconds and benchmark accuracy); each arch's values go to ``progress``."""
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    with Progress(len(chosen), "training", ctx.config.task.progress) as bar:
        for arch, band in chosen:
            tracked = scorer.track(arch, epochs)
            kept = [rec for rec in tracked.records if rec["epoch"] in epochs]
            rows += [{"arch": arch, "band": band, **rec, "seconds": tracked.seconds, "cached": tracked.cached}
                     for rec in kept]
            progress.arch_done(arch, {f"{m}/t{rec['epoch']}": rec.get(m, float("nan")) for rec in kept
                                      for m in ctx.selection.metrics}, tracked.seconds, tracked.cached)
            if tracked.error is not None:
                errors.append(tracked.error)
            bar.step(cached=tracked.cached)
    if len(errors) == len(chosen):
        raise NothingScored(f"every arch failed to train or score; the first error: {errors[0]}")
    frame = pd.DataFrame(rows)
    frame["accuracy"] = ctx.require_ground_truth().accuracy(list(frame["arch"]), ctx.accuracy_key)
    return frame


def evolution_payload(ctx: RunContext, frame: pd.DataFrame, ranks: pd.DataFrame, chosen: list[tuple[str, str]],
                      epochs: list[int], scorer: ArchScorer, note: str, diverged: dict[str, int]) -> dict[str, Any]:
    """``summary.json``'s own part: what ran, tau per metric and step, the kernels' median and mean movement."""
    names = list(ctx.selection.metrics)
    moved = {f"{col}_{how}": getattr(frame.groupby("epoch")[col], how)().to_dict()
             for how in ("median", "mean") for col in ("kernel_corr", "kernel_rel_diff")}
    return {"n_archs": len(chosen), "n_cached": scorer.n_cached, "epochs": epochs, "note": note,
            "diverged": diverged,  # arch -> the first step whose training loss was not finite
            "steps_per_epoch": ctx.data.plan.steps_per_epoch, "batch_size": ctx.data.plan.batch_size,
            "kendall_tau": {n: {int(r.epoch): r.kendall_tau for r in ranks[ranks.metric == n].itertuples()}
                            for n in names},
            **{k: moved[k] for k in ("kernel_corr_median", "kernel_rel_diff_median", "kernel_corr_mean",
                                     "kernel_rel_diff_mean")}}


def run_note(ctx: RunContext, n_archs: int) -> str:
    """The run's scale in one line: network, data, what an epoch is, BN mode and probe batch, archs."""
    n_train, plan = len(ctx.data.train_tensors[1]), ctx.data.plan
    unit = "t in optimiser steps" if plan.steps_per_epoch == 1 else f"an epoch is {plan.steps_per_epoch:,} steps"
    return (f"{ctx.space.label()} | {ctx.dataset.label or ctx.dataset.name} ({n_train:,} train images; {unit} of "
            f"{plan.batch_size} images, {ctx.train.resolved_precision(ctx.device.type)}) | "
            f"bn={ctx.ntk.bn_mode} batch={ctx.ntk.batch_size} | {n_archs} archs")


def present_evolution(out: RunOutput, frame: pd.DataFrame, ranks: pd.DataFrame, names: list[str], note: str) -> None:
    """The dashboard's per-epoch tau series, the three figures and the labelled tau table on stdout."""
    for r in ranks.itertuples():
        out.logger.log_metrics({f"{r.metric}/kendall_tau": r.kendall_tau, f"{r.metric}/spearman_rho": r.spearman_rho,
                                "epoch": r.epoch})
    out.figure("kernel_evolution", lambda: kernel_figure(frame, note))
    out.figure("metrics_by_band", lambda: metrics_figure(frame, names, note))
    out.figure("rank_correlation", lambda: rank_figure(ranks, names, note))
    print(tau_table(ranks, names, note))


def run_kernel_evolution(ctx: RunContext, out: RunOutput) -> dict[str, Any]:
    task = ctx.config.task
    top_k = top_k_fractions(task.top_k)  # checked before any arch is trained
    epochs = sorted(set(int(e) for e in task.track_epochs) | {0})
    if min(epochs) < 0:
        raise ValueError(f"task.track_epochs must be >= 0, got {list(task.track_epochs)}")
    chosen = _chosen_archs(ctx)
    scorer = ArchScorer(ctx)
    if max(epochs) > 0:
        scorer.training("task=kernel_evolution")  # refuses a probe-only data set before any work
    progress = DashboardProgress(out, {f"{m}/t{e}": m for m in ctx.selection.metrics for e in epochs}, len(chosen))
    frame = track_archs(ctx, scorer, chosen, epochs, progress)
    diverged = diverged_archs(frame)
    if diverged:
        arch, step = next(iter(diverged.items()))
        log.warning("training diverged for %d of %d archs (the loss became infinite or NaN; first %s at step %d): "
                    "their metrics after that step are meaningless; lower trainer.lr", len(diverged), len(chosen),
                    arch, step)
    out.table("evolution", frame)
    out.training_curves(scorer.curves)
    names = list(ctx.selection.metrics)
    ranks = pd.DataFrame([rank_row(part, name, int(epoch), top_k, ctx.seed)
                          for epoch, part in frame.groupby("epoch") for name in names])
    out.table("rank_correlation", ranks)
    note = run_note(ctx, len(chosen))
    training = {"training": scorer.training("training")} if max(epochs) > 0 else {}
    payload = evolution_payload(ctx, frame, ranks, chosen, epochs, scorer, note, diverged)
    summary = out.summary("kernel_evolution", payload, {}, scorer, epochs=0, conventions=training)
    present_evolution(out, frame, ranks, names, note)
    return summary


register_task("kernel_evolution", config=KernelEvolutionConfig)(
    run_kernel_evolution)
