"""``task=correlate``: score archs and rank-correlate the scores with the benchmark's final accuracy.

Writes to the run directory: ``scores.csv`` (arch, index, one column per score, accuracy, flags, seconds, cached),
``summary.json`` (Kendall tau / Spearman rho / top-k precision per score, what was computed in words, every
convention, versions), ``scatter.png`` (score vs accuracy), and logs the same to the configured logger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import logging
import textwrap
from typing import Any

import numpy as np
import pandas as pd

from ntkexp.config import TaskConfig
from ntkexp.metrics import direction_of, traits
from ntkexp.plotting import pyplot
from ntkexp.scoring import ArchScorer, RunContext, choose_archs, score_archs, scoring_counts
from ntkexp.stats import correlation_table
from ntkexp.tasks.base import DashboardProgress, RunOutput, register_task, top_k_fractions

log = logging.getLogger("ntkexp")


@dataclass
class CorrelateConfig(TaskConfig):
    """``task=correlate``: the precision at the top fractions ``top_k`` of the archs reported beside tau and rho;
    ``decile``: sample only from accuracy decile P<decile> (1 = the top 10 %) of ``n_deciles``."""

    top_k: list[float] = field(default_factory=lambda: [0.01, 0.05, 0.1])
    decile: int | None = None
    n_deciles: int = 10


def scatter_figure(frame: pd.DataFrame, metric_names: list[str], title: str, ylabel: str,
                   correlations: dict[str, dict[str, Any]] | None = None) -> Any:
    """One panel per score (at most 5 a row), score against accuracy, each titled with its Kendall tau, Spearman rho
    and n (from ``correlations``), under ``title`` wrapped to the figure's width; a score whose traits ask for a log
    axis gets one with a few labelled decades (an all-negative score, e.g. NCN, is drawn as its magnitude);
    returns the matplotlib figure."""
    from matplotlib.ticker import LogLocator, NullFormatter

    plt = pyplot()
    cols = min(len(metric_names), 5)
    rows = -(-len(metric_names) // cols)
    width = max(3.6 * cols, 7.5)
    lines = textwrap.wrap(title, int(width * 72 / 5.0))  # about what fits across the figure at 8.5 pt
    fig, axes = plt.subplots(rows, cols, figsize=(width, 3.3 * rows + 0.2 * len(lines)), squeeze=False)
    for ax in axes.flat[len(metric_names):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, metric_names):
        values = frame[name].to_numpy(dtype=float)
        ok = np.isfinite(values)
        x, label = values[ok], name
        if traits(name).log_axis and len(x) and (np.all(x > 0) or np.all(x < 0)):
            if np.all(x < 0):
                x, label = -x, f"-{name}"
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(numticks=4))
            ax.xaxis.set_minor_formatter(NullFormatter())
            label += " (log scale)"
        ax.scatter(x, frame["accuracy"].to_numpy()[ok], s=8, alpha=0.6)
        ax.set_xlabel(label + ("" if ok.all() else f"  ({(~ok).sum()} undefined not shown)"), fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        row = (correlations or {}).get(name)
        if row is not None:
            ax.set_title(f"{name}: tau {row['kendall_tau']:+.3f}, rho {row['spearman_rho']:+.3f}, n {row['n']}",
                         fontsize=8)
    fig.suptitle("\n".join(lines), fontsize=8.5)
    fig.tight_layout()
    return fig


SMALL_SAMPLE = 10  # archs below which a correlation is printed with a small-sample note


def print_table(summary: dict[str, Any]) -> None:
    """What was scored, in words, then the table of rank correlations and one plain line per score."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"{summary['network']}, {summary['n_archs']} archs", style="bold", markup=False, highlight=False)
    for head, what in (("data", "data"), ("NTK", "convention"), ("against", "accuracy_label")):
        console.print(f"  {head + ':':9}{summary[what]}", markup=False, highlight=False, soft_wrap=True)
    table = Table()
    for col in ("metric", "Kendall tau", "Spearman rho", "top-10% prec.", "undefined"):
        table.add_column(col, justify="right" if col != "metric" else "left")
    for name, row in summary["correlations"].items():
        table.add_row(name, f"{row['kendall_tau']:.4f}", f"{row['spearman_rho']:.4f}",
                      f"{row.get('top0.1_precision', float('nan')):.3f}", str(row["n_undefined"]))
    console.print(table)
    for name, row in summary["correlations"].items():
        print(f"{name}: kendall_tau={row['kendall_tau']:.4f} spearman_rho={row['spearman_rho']:.4f}")
    n = int(summary["n_archs"])
    if n < SMALL_SAMPLE:
        p_values = ", ".join(f"{name} {row.get('kendall_p', float('nan')):.2g}"
                             for name, row in summary["correlations"].items())
        print(f"note: only {n} archs: a rank correlation over so few is mostly noise (Kendall tau's p-values: "
              f"{p_values}); use n_archs=100 or more for a verdict")


def run_correlate(ctx: RunContext, out: RunOutput) -> dict[str, Any]:
    top_k = top_k_fractions(ctx.config.task.top_k)  # checked before any arch is scored
    archs = choose_archs(ctx, decile=ctx.config.task.decile, n_deciles=ctx.config.task.n_deciles)
    scorer = ArchScorer(ctx)
    device_note = ""
    if ctx.device.type == "cpu" and len(archs) * ctx.ntk.batch_size > 20000 and ctx.ntk.bn_mode == "train":
        device_note = (f"running on CPU: {len(archs)} archs at batch {ctx.ntk.batch_size} with the exact train-mode "
                       "NTK may take long; big studies belong on a GPU (device=cuda)")
        log.warning(device_note)
    log.info("scoring %d archs with %s (bn_mode=%s, init=%s, batch %d) on %s", len(archs),
             ",".join(ctx.selection.names), ctx.ntk.bn_mode, ctx.init.name, ctx.ntk.batch_size, ctx.device)
    names = ctx.selection.names
    progress = DashboardProgress(out, {n: n for n in ctx.selection.metrics}, len(archs))
    frame = score_archs(ctx, scorer, archs, on_arch=lambda row: progress.arch_done(
        row["arch"], {n: row.get(n, float("nan")) for n in ctx.selection.metrics}, row["seconds"], row["cached"]))
    out.scores(frame, names)
    out.training_curves(scorer.curves)

    key = ctx.accuracy_key
    correlations = correlation_table(frame, {n: direction_of(n) for n in names}, top_k)
    payload: dict[str, Any] = {
        "n_archs": len(frame),
        "accuracy_label": ctx.accuracy_label,
        "correlations": correlations,
        "directions": {n: direction_of(n) for n in names},
        **scoring_counts(frame, scorer),
        "device_note": device_note,
    }
    flat = {f"{m}/{k}": v for m, row in correlations.items() for k, v in row.items() if k != "direction"}
    summary = out.summary("correlate", payload, {**flat, "n_archs": len(frame), "n_flagged": payload["n_flagged"]},
                          scorer)
    title = (f"{summary['network']}, {len(frame)} archs; {summary['data']}; NTK {summary['convention']}; "
             f"against {summary['accuracy_label']}")
    out.figure("scatter", lambda: scatter_figure(frame, names, title, f"{key} accuracy (%)", correlations))
    print_table(summary)
    return summary


register_task("correlate", config=CorrelateConfig)(run_correlate)
