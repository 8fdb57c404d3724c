"""``task=correlate``: score archs and rank-correlate the scores with the benchmark's final accuracy.

Writes to the run directory: ``scores.csv`` (arch, index, one column per score, accuracy, flags, seconds, cached),
``summary.json`` (Kendall tau / Spearman rho / top-k precision per score, what was computed in words, every
convention, versions), ``scatter.png`` (score vs accuracy), and logs the same to the configured logger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import logging
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ntkexp.config import TaskConfig
from ntkexp.metrics import combine, direction_of, traits
from ntkexp.plotting import pyplot, save_figure
from ntkexp.scoring import ArchScorer, NothingScored, Progress, RunContext, choose_archs
from ntkexp.stats import correlation_table
from ntkexp.tables import aggregate, markdown, write_csv
from ntkexp.tasks.base import RunOutput, register_task, top_k_fractions

log = logging.getLogger("ntkexp")


@dataclass
class CorrelateConfig(TaskConfig):
    """``task=correlate``: the precision at the top fractions ``top_k`` of the archs reported beside tau and rho;
    ``decile``: sample only from accuracy decile P<decile> (1 = the top 10 %) of ``n_deciles``."""

    top_k: list[float] = field(default_factory=lambda: [0.01, 0.05, 0.1])
    decile: int | None = None
    n_deciles: int = 10


def scatter_figure(frame: pd.DataFrame, metric_names: list[str], title: str, ylabel: str) -> Any:
    """One panel per score (at most 5 a row), score against accuracy, under ``title`` wrapped to the figure's
    width; returns the matplotlib figure."""
    plt = pyplot()
    cols = min(len(metric_names), 5)
    rows = -(-len(metric_names) // cols)
    width = max(3.6 * cols, 7.5)
    lines = textwrap.wrap(title, int(width * 72 / 5.0))  # about what fits across the figure at 8.5 pt
    fig, axes = plt.subplots(rows, cols, figsize=(width, 3.2 * rows + 0.2 * len(lines)), squeeze=False)
    for ax in axes.flat[len(metric_names):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, metric_names):
        values = frame[name].to_numpy(dtype=float)
        ok = np.isfinite(values)
        x = values[ok]
        if traits(name).log_axis and len(x) and (np.all(x > 0) or np.all(x < 0)):
            ax.set_xscale("symlog" if np.any(x < 0) else "log")
        ax.scatter(x, frame["accuracy"].to_numpy()[ok], s=8, alpha=0.6)
        ax.set_xlabel(name + ("" if ok.all() else f"  ({(~ok).sum()} undefined not shown)"))
        ax.set_ylabel(ylabel)
    fig.suptitle("\n".join(lines), fontsize=8.5)
    fig.tight_layout()
    return fig


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


def score_archs(ctx: RunContext, scorer: ArchScorer, archs: list[str], with_accuracy: bool = True) -> pd.DataFrame:
    """One row per arch (every score of the selection, combinations formed over the set), with its accuracy (unless
    ``with_accuracy`` is False: no ground truth)."""
    rows = []
    with Progress(len(archs), "scoring", ctx.config.task.progress) as bar:
        for arch in archs:
            record = scorer.score(arch)
            rows.append(record.row())
            bar.step(cached=record.cached)
    frame = pd.DataFrame(rows)
    if with_accuracy:
        frame["accuracy"] = ctx.require_ground_truth().accuracy(list(frame["arch"]), ctx.accuracy_key)
    for name in scorer.selection.combinations:  # rank aggregations over the scored set
        frame[name] = combine(name, {c: frame[c].to_numpy() for c in frame.columns})
    errors = frame["flags"].str.contains("error:")
    if errors.all():
        raise NothingScored(f"every arch failed to score; the first error: {frame['error'].iloc[0]}")
    return frame


def write_scores(out: RunOutput, frame: pd.DataFrame, names: list[str]) -> None:
    """``scores.csv`` (one row per arch: its scores, train stats and accuracy where there are any, flags, seconds,
    and the error of an arch that failed) and the same table, without the errors, on the dashboard."""
    optional = [c for c in ("train_loss", "train_acc", "accuracy") if c in frame]
    columns = ["arch", "index", *names, *optional, "flags", "seconds", "cached"]
    out.table("scores", frame[columns + (["error"] if "error" in frame else [])], log=False)
    out.logger.log_table("scores", frame[columns])


def scoring_counts(frame: pd.DataFrame, scorer: ArchScorer) -> dict[str, Any]:
    """How many archs were flagged, computed and read from the cache, and the seconds their scores cost."""
    return {"n_flagged": int((frame["flags"] != "").sum()), "n_computed": scorer.n_computed,
            "n_cached": scorer.n_cached, "score_seconds_total": float(frame["seconds"].sum())}


def run_correlate(ctx: RunContext, out: RunOutput) -> dict[str, Any]:
    archs = choose_archs(ctx, decile=ctx.config.task.decile, n_deciles=ctx.config.task.n_deciles)
    scorer = ArchScorer(ctx)
    device_note = ""
    if ctx.device.type == "cpu" and len(archs) * ctx.ntk.batch_size > 20000 and ctx.ntk.bn_mode == "train":
        device_note = (f"running on CPU: {len(archs)} archs at batch {ctx.ntk.batch_size} with the exact train-mode "
                       "NTK may take long; big studies belong on a GPU (device=cuda)")
        log.warning(device_note)
    log.info("scoring %d archs with %s (bn_mode=%s, init=%s, batch %d) on %s", len(archs),
             ",".join(ctx.selection.names), ctx.ntk.bn_mode, ctx.init.name, ctx.ntk.batch_size, ctx.device)
    frame = score_archs(ctx, scorer, archs)
    names = ctx.selection.names
    write_scores(out, frame, names)
    out.training_curves(scorer.curves)

    gt = ctx.require_ground_truth()
    key = ctx.accuracy_key
    correlations = correlation_table(frame, {n: direction_of(n) for n in names}, top_k_fractions(ctx.config.task.top_k))
    payload: dict[str, Any] = {
        "n_archs": len(frame),
        **scorer.description(),
        "accuracy_label": ctx.accuracy_label,
        "ground_truth": gt.provenance(),
        "correlations": correlations,
        "directions": {n: direction_of(n) for n in names},
        **scoring_counts(frame, scorer),
        "device_note": device_note,
    }
    flat = {f"{m}/{k}": v for m, row in correlations.items() for k, v in row.items() if k != "direction"}
    summary = out.summary("correlate", payload, {**flat, "n_archs": len(frame), "n_flagged": payload["n_flagged"]},
                          scorer.conventions)
    title = (f"{summary['network']}, {len(frame)} archs; {summary['data']}; NTK {summary['convention']}; "
             f"against {summary['accuracy_label']}")
    out.figure("scatter", lambda: scatter_figure(frame, names, title, f"{key} accuracy (%)"))
    print_table(summary)
    return summary


def correlate_rows(summary: dict[str, Any], base: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**base, "metric": metric, "n_archs": row["n"], **{k: v for k, v in row.items() if k not in ("n", "direction")}}
            for metric, row in summary["correlations"].items()]


def correlate_section(frame: pd.DataFrame, out_dir: Path) -> list[str]:
    table = aggregate(frame, ["group", "metric"], ["kendall_tau", "spearman_rho"])
    table.to_csv(out_dir / "correlate_summary.csv", index=False)
    parts = ["## Rank correlation with final accuracy (mean, std and n over seeds)", "", markdown(table), ""]
    groups = list(dict.fromkeys(table["group"]))
    metrics = list(dict.fromkeys(table["metric"]))
    plt = pyplot()
    per_metric = max(int(table.groupby("metric")["group"].nunique().max()), 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(metrics) * per_metric), 4.0))
    colours = {group: f"C{g % 10}" for g, group in enumerate(groups)}
    labelled: set[str] = set()
    for i, metric in enumerate(metrics):  # the groups that scored this metric, side by side, centred on its tick
        rows = table[table.metric == metric]
        width = 0.8 / len(rows)
        for j, row in enumerate(rows.itertuples()):
            std = row.kendall_tau_std if pd.notna(row.kendall_tau_std) else 0.0
            ax.bar(i - 0.4 + width * (j + 0.5), row.kendall_tau_mean, yerr=std, width=width, capsize=2,
                   color=colours[row.group], label=None if row.group in labelled else row.group[:60])
            labelled.add(row.group)
    ax.set_xticks(np.arange(len(metrics)), metrics, rotation=45, ha="right")
    ax.set_ylabel("Kendall tau")
    ax.axhline(0, color="grey", lw=0.5)
    ax.legend(fontsize=6)
    ax.set_title("Kendall tau of each score with final accuracy, mean and std over seeds", fontsize=9)
    parts += [f"![Kendall tau]({save_figure(fig, out_dir / 'correlate_kendall.png').name})", ""]
    box = frame.pivot_table(index=["group", "seed"], columns="metric", values="kendall_tau")
    if box.index.get_level_values("seed").nunique() > 1:
        parts += [f"![per-seed box plot]({decile_box_plot(box, out_dir / 'correlate_box.png').name})", ""]
    settings = pd.DataFrame([parse_group(g) for g in table["group"]], index=table.index)
    if "bn_mode" in settings:
        parts += best_of_bn_modes(table.join(settings), [c for c in settings.columns if c != "bn_mode"], out_dir)
        if "init" in settings:
            parts += convention_spread(table.join(settings), out_dir)
    return parts


PAPER_BN_MODES = ("per_sample", "eval")  # Mok et al.'s Train (per-sample statistics) and Eval modes


def parse_group(group: str) -> dict[str, str]:
    """A report group label (``"bn_mode=eval search_space=nasbench101"``) as {override: value}."""
    return dict(item.split("=", 1) for item in group.split() if "=" in item)


def best_of_bn_modes(table: pd.DataFrame, others: list[str], out_dir: Path) -> list[str]:
    """Per metric and every other setting (``others``), Kendall tau in each BN mode and the better of the paper's two
    (Train = ``per_sample``, Eval): what Mok et al.'s Figure 3 plots."""
    wide = table.pivot_table(index=[*others, "metric"], columns="bn_mode", values="kendall_tau_mean")
    wide.columns = [f"tau {m}" for m in wide.columns]
    paper = [f"tau {m}" for m in PAPER_BN_MODES if f"tau {m}" in wide.columns]
    if not paper:
        return []
    wide["best of Train/Eval"] = wide[paper].max(axis=1)
    wide["better mode"] = wide[paper].idxmax(axis=1).str.removeprefix("tau ")
    out = wide.reset_index()
    write_csv(out, out_dir / "correlate_best_bn_mode.csv")
    plt = pyplot()
    label = out[others].astype(str).agg(" ".join, axis=1) if others else pd.Series("all", index=out.index)
    groups = list(dict.fromkeys(label))
    metrics = list(dict.fromkeys(out["metric"]))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.45 * len(groups) * len(metrics)), 3.8))
    width = 0.8 / max(1, len(metrics))
    for m, metric in enumerate(metrics):
        best = out[out["metric"] == metric].assign(label=label).set_index("label")["best of Train/Eval"]
        ax.bar(np.arange(len(groups)) + m * width, best.reindex(groups).to_numpy(), width=width, label=metric)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, groups, rotation=30, ha="right", fontsize=7)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("Kendall tau (better BN mode)")
    ax.set_title("At initialisation, the better of the Train (per-sample) and Eval BN modes (Mok et al., Fig. 3)",
                 fontsize=8)
    ax.legend(fontsize=7)
    path = save_figure(fig, out_dir / "correlate_best_bn_mode.png")
    return ["## Better of the two BN modes (what Mok et al.'s Figure 3 plots), next to each mode", "",
            markdown(out), "", f"![best of the BN modes]({path.name})", ""]


def convention_spread(table: pd.DataFrame, out_dir: Path) -> list[str]:
    """Kendall tau of each metric under each BN mode x init, with its spread (max - min): how much a convention
    moves the verdict."""
    wide = table.pivot_table(index="metric", columns=["bn_mode", "init"], values="kendall_tau_mean")
    wide.columns = [f"{bn} / {init}" for bn, init in wide.columns]
    wide["min"], wide["max"] = wide.min(axis=1), wide.max(axis=1)
    wide["spread"] = wide["max"] - wide["min"]
    out = wide.reset_index()
    write_csv(out, out_dir / "correlate_convention_spread.csv")
    return ["## Convention spread: Kendall tau of each metric under each BN mode / init", "", markdown(out, 3), ""]


def decile_box_plot(box: pd.DataFrame, path: Path) -> Path:
    """Kendall tau over seeds, one panel per score, one box per group (e.g. per decile), readable labels."""
    plt = pyplot()
    metrics = list(box.columns)
    groups = list(dict.fromkeys(box.index.get_level_values("group")))
    cols = min(len(metrics), 4)
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(max(4.0, 0.45 * len(groups) + 1.5) * cols, 3.4 * rows),
                             squeeze=False)
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    labels = [g.replace("task.decile=", "P") for g in groups]
    for ax, metric in zip(axes.flat, metrics):
        data = [box.xs(g, level="group")[metric].dropna().to_numpy() for g in groups]
        ax.boxplot(data, tick_labels=labels)
        ax.tick_params(axis="x", labelsize=8, rotation=45 if max(len(lb) for lb in labels) > 4 else 0)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(metric, fontsize=9)
        ax.set_ylabel("Kendall tau")
    fig.suptitle("Kendall tau over seeds, per group", fontsize=10)
    return save_figure(fig, path)


register_task("correlate", correlate_rows, correlate_section, config=CorrelateConfig)(run_correlate)
