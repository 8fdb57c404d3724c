"""``task=correlate`` in a sweep report: Kendall tau and Spearman rho per group (mean, std and n over seeds), a bar
chart centred per metric, per-seed box plots, and the BN-mode analyses of Mok et al.'s Figure 3 (the better of the
Train and Eval modes; the spread over BN mode x init)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ntkexp.plotting import pyplot, save_figure
from ntkexp.report.base import register_section
from ntkexp.tables import aggregate, markdown, write_csv


def correlate_rows(summary: dict[str, Any], base: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**base, "metric": metric, "n_archs": row["n"], **{k: v for k, v in row.items() if k not in ("n", "direction")}}
            for metric, row in summary["correlations"].items()]


@register_section("correlate", rows=correlate_rows)
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
    ax.set_title("Kendall tau of each score with final accuracy,\nmean and std over seeds", fontsize=9)
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
