"""``task=kernel_evolution`` in a sweep report: Kendall tau after t epochs of training, per metric and group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ntkexp.plotting import pyplot, save_figure
from ntkexp.report.base import register_section
from ntkexp.tables import aggregate, markdown


def evolution_rows(summary: dict[str, Any], base: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**base, "metric": metric, "epoch": int(epoch), "kendall_tau": tau}
            for metric, per_epoch in summary["kendall_tau"].items() for epoch, tau in per_epoch.items()]


@register_section("kernel_evolution", rows=evolution_rows)
def evolution_section(frame: pd.DataFrame, out_dir: Path) -> list[str]:
    table = aggregate(frame, ["group", "metric", "epoch"], ["kendall_tau"])
    table.to_csv(out_dir / "kernel_evolution_summary.csv", index=False)
    fig, ax = pyplot().subplots(figsize=(5.4, 3.8))
    for (group, metric), part in table.groupby(["group", "metric"], sort=False):
        ax.errorbar(part["epoch"], part["kendall_tau_mean"], yerr=part["kendall_tau_std"].fillna(0), marker="o",
                    capsize=2, label=f"{metric} {group[:30]}")
    ax.set_xlabel("epoch t")
    ax.set_ylabel("Kendall tau")
    ax.legend(fontsize=6)
    ax.set_title("Kendall tau of each metric\nafter t epochs of training", fontsize=9)
    ax.xaxis.get_major_locator().set_params(integer=True)
    path = save_figure(fig, out_dir / "kernel_evolution_tau.png")
    return ["## Kendall tau after t epochs of training (mean, std and n over seeds)", "", markdown(table), "",
            f"![tau vs epoch]({path.name})", ""]
