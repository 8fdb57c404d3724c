"""Collect the jobs of a sweep (every ``summary.json`` below a directory) into tidy tables, figures and a Markdown
report: mean, std and n over seeds, grouped by everything else the jobs were overridden with.

    python scripts/report.py outputs/correlate/multirun/2026-11-24/10-00-00
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ntkexp.io import atomic_write
from ntkexp.plotting import pyplot, save_figure


def _overrides(job_dir: Path) -> dict[str, str]:
    """The job's command-line overrides (key -> value), less the seed and hydra's own."""
    path = job_dir / ".hydra" / "overrides.yaml"
    items = (yaml.safe_load(path.read_text()) or []) if path.exists() else []
    pairs = dict(o.split("=", 1) for o in items if "=" in o)
    return {k: v for k, v in pairs.items() if k != "seed" and not k.startswith("hydra")}


def _group_labels(jobs: list[Path]) -> dict[Path, str]:
    """Each job's group: the overrides whose values differ between the sweep's jobs (the seed excluded)."""
    per_job = {job: _overrides(job) for job in jobs}
    keys = sorted({k for o in per_job.values() for k in o})
    varying = [k for k in keys if len({o.get(k) for o in per_job.values()}) > 1]
    return {job: " ".join(f"{k}={o.get(k, '-')}" for k in varying) or "all" for job, o in per_job.items()}


def collect(sweep_dir: Path) -> dict[str, pd.DataFrame]:
    """Tidy per-job rows for each task found under ``sweep_dir``."""
    rows: dict[str, list[dict[str, Any]]] = {"correlate": [], "search": [], "kernel_evolution": []}
    paths = sorted(sweep_dir.rglob("summary.json"))
    labels = _group_labels([p.parent for p in paths])
    for summary_path in paths:
        summary = json.loads(summary_path.read_text())
        job = summary_path.parent
        base = {"group": labels[job], "seed": summary.get("config", {}).get("seed"), "job": str(job)}
        task = summary.get("task")
        if task == "correlate":
            for metric, row in summary["correlations"].items():
                rows["correlate"].append({**base, "metric": metric, "n_archs": row["n"],
                                          **{k: v for k, v in row.items() if k not in ("n", "direction")}})
        elif task == "search":
            key = summary["dataset_key"]
            for dataset, acc in summary["found"]["accuracy"].items():
                rows["search"].append({**base, "algorithm": summary["algorithm"], "metric": summary["metric"],
                                       "dataset": dataset, "found": acc, "oracle": summary["oracle"]["accuracy"][dataset],
                                       "random": summary["random_arch_mean_accuracy"][dataset],
                                       "searched_on": key, "score_seconds": summary["found"]["score_seconds"],
                                       "evaluations": summary["found"]["evaluations"]})
        elif task == "kernel_evolution":
            for metric, per_epoch in summary["kendall_tau"].items():
                for epoch, tau in per_epoch.items():
                    rows["kernel_evolution"].append({**base, "metric": metric, "epoch": int(epoch), "kendall_tau": tau})
    return {task: pd.DataFrame(r) for task, r in rows.items() if r}


def aggregate(frame: pd.DataFrame, keys: list[str], values: list[str]) -> pd.DataFrame:
    """mean, std and n of ``values`` over seeds for every combination of ``keys``."""
    grouped = frame.groupby(keys, sort=False)[values]
    out = grouped.agg(["mean", "std", "count"])
    out.columns = [f"{v}_{s if s != 'count' else 'n'}" for v, s in out.columns]
    return out.reset_index()


def _markdown(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


def _figure(path: Path, draw: Any) -> Path:
    return save_figure(draw(pyplot()), path)


def write_report(sweep_dir: Path, out_dir: Path | None = None, title: str | None = None) -> Path:
    """Write ``report.md``, one ``<task>_summary.csv`` per task and PNG figures into ``out_dir`` (default: the sweep
    directory); returns the report's path."""
    out_dir = out_dir or sweep_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = collect(sweep_dir)
    if not tables:
        raise ValueError(f"no job summaries (summary.json) under {sweep_dir}")
    parts = [f"# {title or 'ntkexp report'}", "", f"Sweep: `{sweep_dir}`", ""]
    for task, frame in tables.items():
        with atomic_write(out_dir / f"{task}_jobs.csv") as tmp:
            frame.to_csv(tmp, index=False)
        if task == "correlate":
            table = aggregate(frame, ["group", "metric"], ["kendall_tau", "spearman_rho"])
            parts += ["## Rank correlation with final accuracy (mean, std and n over seeds)", "", _markdown(table), ""]

            def draw(plt: Any, table: pd.DataFrame = table) -> Any:
                groups = list(dict.fromkeys(table["group"]))
                metrics = list(dict.fromkeys(table["metric"]))
                fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(metrics) * max(1, len(groups))), 3.8))
                width = 0.8 / max(1, len(groups))
                for g, group in enumerate(groups):
                    part = table[table.group == group].set_index("metric").reindex(metrics)
                    ax.bar(np.arange(len(metrics)) + g * width, part["kendall_tau_mean"],
                           yerr=part["kendall_tau_std"].fillna(0), width=width, label=group[:60], capsize=2)
                ax.set_xticks(np.arange(len(metrics)) + 0.4 - width / 2, metrics, rotation=45, ha="right")
                ax.set_ylabel("Kendall tau")
                ax.axhline(0, color="grey", lw=0.5)
                ax.legend(fontsize=6)
                return fig

            parts += [f"![Kendall tau]({_figure(out_dir / 'correlate_kendall.png', draw).name})", ""]
            box = frame.pivot_table(index=["group", "seed"], columns="metric", values="kendall_tau")
            if box.index.get_level_values("seed").nunique() > 1:
                def draw_box(plt: Any) -> Any:
                    fig, ax = plt.subplots(figsize=(max(5, 0.5 * box.shape[1] * box.index.get_level_values(0).nunique()), 3.8))
                    labels, data = [], []
                    for group, part in box.groupby(level="group"):
                        for metric in box.columns:
                            labels.append(f"{metric}\n{group[:25]}")
                            data.append(part[metric].dropna().to_numpy())
                    ax.boxplot(data, tick_labels=labels)
                    ax.tick_params(axis="x", labelsize=5, rotation=90)
                    ax.set_ylabel("Kendall tau over seeds")
                    return fig

                parts += [f"![per-seed box plot]({_figure(out_dir / 'correlate_box.png', draw_box).name})", ""]
        elif task == "search":
            table = aggregate(frame, ["group", "algorithm", "metric", "dataset"],
                              ["found", "oracle", "random", "score_seconds", "evaluations"])
            parts += ["## Search results (test accuracy %, mean, std and n over seeds)", "", _markdown(table), ""]
        else:
            table = aggregate(frame, ["group", "metric", "epoch"], ["kendall_tau"])
            parts += ["## Kendall tau after t epochs of training (mean, std and n over seeds)", "", _markdown(table), ""]

            def draw_evo(plt: Any, table: pd.DataFrame = table) -> Any:
                fig, ax = plt.subplots(figsize=(5, 3.6))
                for (group, metric), part in table.groupby(["group", "metric"], sort=False):
                    ax.errorbar(part["epoch"], part["kendall_tau_mean"], yerr=part["kendall_tau_std"].fillna(0),
                                marker="o", capsize=2, label=f"{metric} {group[:30]}")
                ax.set_xlabel("epoch t")
                ax.set_ylabel("Kendall tau")
                ax.legend(fontsize=6)
                return fig

            parts += [f"![tau vs epoch]({_figure(out_dir / 'kernel_evolution_tau.png', draw_evo).name})", ""]
        with atomic_write(out_dir / f"{task}_summary.csv") as tmp:
            table.to_csv(tmp, index=False)
    report = out_dir / "report.md"
    with atomic_write(report) as tmp:
        tmp.write_text("\n".join(parts) + "\n")
    return report
