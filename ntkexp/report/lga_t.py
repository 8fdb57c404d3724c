"""The docs/RESULTS.md section of the LGA_t study, generated from its per-arch table (never typed).

Reads ``study.csv`` (one row per part, arch and t: see :mod:`ntkexp.studies.lga_t`) and ``study.json`` (what was
run, where), and writes the section: Kendall tau / Spearman rho per metric and t with 95 % bootstrap intervals, the
paired difference against t = 0 with its 95 % interval (the archs resampled once for both t's), n, the kernel's
change and the training accuracy, the scale line, figures, and the sentences that state a direction. A metric is
said to rise or fall only where its paired interval excludes zero; otherwise the sentence says so and how many archs
an interval of that width would need to exclude zero at the measured difference. Everything is seeded: the same table
gives the same section, byte for byte.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ntkexp.metrics import direction_of
from ntkexp.plotting import pyplot, save_figure
from ntkexp.report.generated import markers
from ntkexp.metrics import oriented
from ntkexp.stats import best_of_interval, bootstrap_interval, correlate, paired_bootstrap_difference

BLOCK = "lga_t study (scripts/report_lga_t.py)"
BEGIN, END = markers(BLOCK)
METRICS = ("lga", "ncn", "fnorm", "mean")
LABELS = {"lga": "LGA", "ncn": "NCN", "fnorm": "F-Norm", "mean": "Mean"}
PART_TITLES = {"per_sample": "per-sample BN (the paper's Train mode)",
               "train": "the exact train-mode NTK (whole-batch BN statistics, differentiated exactly)",
               "ladder": "per-sample BN, the longer ladder"}
BANDS = {"high": (0.9, 1.0), "mid": (0.45, 0.55), "low": (0.0, 0.1)}  # Mok et al. Figure 2's accuracy quantiles
SEED = 0
POOL = 10  # archs per random search (Mok et al.'s Table 2: 100 of the 15,625; here drawn from the study's archs)


@dataclass(frozen=True)
class Difference:
    """A paired difference of one statistic between t and t = 0 over the same archs."""

    part: str
    metric: str
    step: int
    n: int
    before: float
    after: float
    point: float
    lo: float
    hi: float

    @property
    def resolved(self) -> bool:
        return bool(np.isfinite(self.lo) and (self.lo > 0 or self.hi < 0))

    def needed_archs(self) -> int | None:
        """Archs an interval of this width (shrinking as 1/sqrt(n)) would need to exclude zero at this difference."""
        half = (self.hi - self.lo) / 2
        if not np.isfinite(half) or self.point == 0 or not np.isfinite(self.point):
            return None
        return int(math.ceil(self.n * (half / abs(self.point)) ** 2))

    def sentence(self) -> str:
        name = LABELS.get(self.metric, self.metric)
        what = (f"Kendall tau {_f(self.before)} at t = 0, {_f(self.after)} at t = {self.step}: paired difference "
                f"{_f(self.point)} [{_f(self.lo, 2)}, {_f(self.hi, 2)}] over {self.n} archs")
        if not np.isfinite(self.lo):
            return f"**{name}** ({what}): undefined, so nothing is stated."
        if self.resolved:
            verb = "rises" if self.lo > 0 else "falls"
            return f"**{name} {verb} with training** ({what}; the interval excludes zero)."
        need = self.needed_archs()
        more = (f"an interval this wide would exclude zero at this difference with about {need:,} archs"
                if need is not None else "no number of archs resolves a difference of zero")
        return f"**{name}: no direction resolved** ({what}; the interval contains zero; {more})."


def _f(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:+.{digits}f}"


def parts_of(table: pd.DataFrame) -> list[str]:
    order = list(PART_TITLES)
    return sorted(table["part"].unique(), key=lambda p: (order.index(p) if p in order else len(order), p))


def metrics_of(table: pd.DataFrame) -> list[str]:
    return [m for m in METRICS if m in table.columns]


def pivot(part: pd.DataFrame, metric: str) -> pd.DataFrame:
    """archs x steps of one metric (archs in the study's order), with their accuracy."""
    wide = part.pivot_table(index="order", columns="step", values=metric, aggfunc="first", dropna=False)
    acc = part.groupby("order")["accuracy"].first()
    return wide.join(acc)


def rank_rows(table: pd.DataFrame) -> pd.DataFrame:
    """tau and rho with 95 % bootstrap intervals, per part, metric and t."""
    rows = []
    for part in parts_of(table):
        sub = table[table.part == part]
        for metric in metrics_of(table):
            for step, at in sub.groupby("step"):
                values, acc, d = at[metric].to_numpy(), at["accuracy"].to_numpy(), direction_of(metric)
                c = correlate(values, acc, d, [])
                lo, hi = bootstrap_interval(values, acc, d, "kendall_tau", seed=SEED)
                rlo, rhi = bootstrap_interval(values, acc, d, "spearman_rho", seed=SEED)
                rows.append({"part": part, "metric": metric, "step": int(step), "n": c["n"],
                             "n_undefined": c["n_undefined"], "kendall_tau": c["kendall_tau"], "kendall_lo": lo,
                             "kendall_hi": hi, "spearman_rho": c["spearman_rho"], "spearman_lo": rlo,
                             "spearman_hi": rhi})
    return pd.DataFrame(rows)


def differences(table: pd.DataFrame) -> list[Difference]:
    """The paired difference of Kendall tau at every t > 0 against t = 0, per part and metric, over the archs
    measured at both."""
    out = []
    for part in parts_of(table):
        sub = table[table.part == part]
        for metric in metrics_of(table):
            wide = pivot(sub, metric)
            steps = sorted(c for c in wide.columns if c != "accuracy")
            if 0 not in steps:
                continue
            for step in steps:
                if step == 0:
                    continue
                measured = set(sub[sub.step == 0]["order"]) & set(sub[sub.step == step]["order"])
                both = wide[wide.index.isin(measured)].dropna(subset=["accuracy"])
                d = direction_of(metric)
                point, lo, hi = paired_bootstrap_difference(both[0].to_numpy(), both[step].to_numpy(),
                                                            both["accuracy"].to_numpy(), d, seed=SEED)
                before = correlate(both[0].to_numpy(), both["accuracy"].to_numpy(), d, [])["kendall_tau"]
                after = correlate(both[step].to_numpy(), both["accuracy"].to_numpy(), d, [])["kendall_tau"]
                out.append(Difference(part, metric, int(step), len(both), before, after, point, lo, hi))
    return out


def _cell(r: Any) -> str:
    return (f"{_f(r.kendall_tau)} [{_f(r.kendall_lo, 2)}, {_f(r.kendall_hi, 2)}] / {_f(r.spearman_rho)}"
            if np.isfinite(r.kendall_tau) else "n/a")


def part_table(table: pd.DataFrame, ranks: pd.DataFrame, diffs: list[Difference], part: str) -> list[str]:
    metrics = metrics_of(table)
    sub, rk = table[table.part == part], ranks[ranks.part == part]
    head = ["t (steps)", "archs", *[LABELS.get(m, m) for m in metrics], "median corr(Θ_0, Θ_t)",
            "median ‖Θ_t−Θ_0‖/‖Θ_0‖", "median train acc (%)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for step, at in sub.groupby("step"):
        cells = [str(int(step)), str(at["arch"].nunique())]
        for m in metrics:
            row = rk[(rk.metric == m) & (rk.step == step)]
            cells.append(_cell(next(row.itertuples())) if len(row) else "n/a")
        cells += [f"{at['kernel_corr'].median():.2f}", f"{at['kernel_rel_diff'].median():.2f}",
                  "" if step == 0 else f"{at['train_acc'].median():.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Paired difference of Kendall tau against t = 0 (same archs, resampled together; 95 % interval):", "",
              "| t (steps) | " + " | ".join(LABELS.get(m, m) for m in metrics) + " |",
              "|" + "---|" * (len(metrics) + 1)]
    for step in sorted({d.step for d in diffs if d.part == part}):
        cells = [str(step)]
        for m in metrics:
            d = next((d for d in diffs if d.part == part and d.metric == m and d.step == step), None)
            mark = " ✱" if d is not None and d.resolved else ""
            cells.append("n/a" if d is None else f"{_f(d.point)} [{_f(d.lo, 2)}, {_f(d.hi, 2)}]{mark} (n={d.n})")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("(✱: the interval excludes zero.)")
    return lines


def search_table(table: pd.DataFrame, part: str, k: int = POOL) -> list[str]:
    """What a random search of ``k`` archs guided by each metric at each t finds, in expectation over the pools drawn
    from this part's archs (exact, :func:`~ntkexp.stats.expected_best_of`), with 95 % intervals over the archs; the
    paired difference against the same metric at t = 0; the pool's best (oracle) and a random member beside it.
    A direction is marked only where the paired interval excludes zero."""
    sub = table[table.part == part]
    metrics = metrics_of(table)
    measured = {int(step): set(at["order"]) for step, at in sub.groupby("step")}
    wides = {m: pivot(sub, m).dropna(subset=["accuracy"]) for m in metrics}
    base = wides[metrics[0]]
    base = base[base.index.isin(measured.get(0, set(base.index)))]
    if len(base) < 3 * k:  # too few archs for pools of k to differ much
        return []
    acc = base["accuracy"].to_numpy()
    oracle = best_of_interval(acc, acc, k, seed=SEED)
    lines = [f"What a random search of {k} archs finds, guided by each metric at t (expected CIFAR-10 test accuracy "
             f"of the pick over pools of {k} drawn from these {len(base)} archs, exact; undefined scores rank worst; "
             "[95 % interval over the archs]; Δ: paired difference against the same metric at t = 0, ✱ where its "
             f"interval excludes zero). The pool's best (oracle): {oracle[0]:.2f} [{oracle[1]:.2f}, {oracle[2]:.2f}]; "
             f"a random member: {acc.mean():.2f}.", "",
             "| t (steps) | " + " | ".join(LABELS.get(m, m) for m in metrics) + " |", "|" + "---|" * (len(metrics) + 1)]
    for step in sorted(measured):
        cells = [str(step)]
        for m in metrics:
            wide, d = wides[m], direction_of(m)
            at = wide[wide.index.isin(measured[step])]
            point, lo, hi = best_of_interval(oriented(at[step].to_numpy(), d), at["accuracy"].to_numpy(), k, seed=SEED)
            cell = f"{point:.2f} [{lo:.2f}, {hi:.2f}]"
            if step != 0 and 0 in measured:
                both = wide[wide.index.isin(measured[step] & measured[0])]
                diff, dlo, dhi = best_of_interval(oriented(both[step].to_numpy(), d), both["accuracy"].to_numpy(), k,
                                                  baseline=oriented(both[0].to_numpy(), d), seed=SEED)
                cell += f"; Δ {diff:+.2f} [{dlo:+.2f}, {dhi:+.2f}]" + (" ✱" if dlo > 0 or dhi < 0 else "")
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def scale_line(table: pd.DataFrame, meta: dict[str, Any]) -> str:
    parts = []
    for part in parts_of(table):
        sub = table[table.part == part]
        steps = ", ".join(str(int(s)) for s in sorted(sub["step"].unique()))
        parts.append(f"{part}: {sub['arch'].nunique()} archs at t = {steps} steps")
    note = meta.get("note", "")
    cost = meta.get("cost", {})
    costs = "; ".join(f"{p}: median {c['median_seconds']:.0f} s per arch ({c['archs_timed']} archs timed, one of "
                      f"{c['jobs']} parallel jobs with {c['threads']} thread(s) each)" for p, c in sorted(cost.items()))
    return (f"**Scale.** {note}. Archs: {'; '.join(parts)} (a seeded order of the benchmark's archs, seed "
            f"{meta.get('seed', 0)}). Device: {meta.get('device', 'unknown')}; "
            + (f"run at commits {', '.join(meta['chunk_commits'])} (the commit checked out as each chunk finished; none of them changed the training or scoring arithmetic)."
               if meta.get("chunk_commits") else f"commit {meta.get('commit', 'unknown')}.")
            + (f" Cost: {costs}." if costs else ""))


def independent_lines(independent: dict[str, Any] | None) -> list[str]:
    """An independent run's figures (another machine, not this table), quoted with their provenance."""
    if not independent:
        return []
    lines = [f"**An independent run, quoted (not from this table).** {independent['provenance']}", "",
             "| " + " | ".join(independent["columns"]) + " |", "|" + "---|" * len(independent["columns"])]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in independent["rows"]]
    lines += ["", independent.get("note", ""), ""]
    return lines


def conclusion(diffs: list[Difference], table: pd.DataFrame) -> list[str]:
    lines = ["**What this says** (each sentence generated from the paired intervals above):", ""]
    for part in parts_of(table):
        for d in sorted((d for d in diffs if d.part == part), key=lambda d: (METRICS.index(d.metric)
                        if d.metric in METRICS else 9, d.step)):
            lines.append(f"- {PART_TITLES.get(part, part)}, t = {d.step}: {d.sentence()}")
    return lines + [""]


def band_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the archs in each of Figure 2's accuracy bands (quantiles of the study's archs' accuracy)."""
    acc = table.groupby("arch")["accuracy"].first()
    frames = []
    for band, (lo, hi) in BANDS.items():
        q_lo, q_hi = acc.quantile(lo), acc.quantile(hi)
        archs = acc[(acc >= q_lo) & (acc <= q_hi)].index
        frames.append(table[table.arch.isin(archs)].assign(band=band))
    return pd.concat(frames, ignore_index=True)


def figures(table: pd.DataFrame, ranks: pd.DataFrame, diffs: list[Difference], out_dir: Path,
            prefix: str) -> list[tuple[str, Path]]:
    plt = pyplot()
    parts, metrics, paths = parts_of(table), metrics_of(table), []
    fig, axes = plt.subplots(2, len(parts), figsize=(4.6 * len(parts), 7.0), squeeze=False)
    for col, part in enumerate(parts):
        ax = axes[0][col]
        for m in metrics:
            r = ranks[(ranks.part == part) & (ranks.metric == m)].sort_values("step")
            ax.errorbar(r["step"], r["kendall_tau"], yerr=[(r.kendall_tau - r.kendall_lo).clip(lower=0),
                                                           (r.kendall_hi - r.kendall_tau).clip(lower=0)],
                        marker="o", capsize=3, label=LABELS.get(m, m))
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(f"{part}: Kendall tau (95 % bootstrap)", fontsize=9)
        ax.set_xlabel("optimiser steps t")
        ax.legend(fontsize=7)
        ax = axes[1][col]
        for i, m in enumerate(metrics):
            ds = sorted((d for d in diffs if d.part == part and d.metric == m), key=lambda d: d.step)
            x = [d.step * (1 + 0.03 * (i - 1.5)) for d in ds]
            ax.errorbar(x, [d.point for d in ds], yerr=[[max(0, d.point - d.lo) for d in ds],
                                                       [max(0, d.hi - d.point) for d in ds]],
                        marker="o", capsize=3, ls="none", label=LABELS.get(m, m))
        ax.axhline(0, color="black", lw=0.8)
        ax.set_title(f"{part}: tau(t) - tau(0), paired 95 % interval", fontsize=9)
        ax.set_xlabel("optimiser steps t")
        ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(("Kendall tau per t and its paired difference against t = 0",
                  save_figure(fig, out_dir / f"{prefix}_tau.png")))

    bands = band_frame(table[table.part == parts[0]])
    fig, axes = plt.subplots(1, len(metrics) + 1, figsize=(3.3 * (len(metrics) + 1), 3.4), squeeze=False)
    for ax, col in zip(axes[0], [*metrics, "kernel_corr"]):
        for band in BANDS:
            b = bands[bands.band == band]
            finite = b[np.isfinite(b[col].astype(float))]
            if finite.empty:
                continue
            q = finite.groupby("step")[col].quantile([0.25, 0.5, 0.75]).unstack()
            ax.errorbar(q.index, q[0.5], yerr=[(q[0.5] - q[0.25]).clip(lower=0), (q[0.75] - q[0.5]).clip(lower=0)],
                        marker="o", capsize=2, label=f"{band} ({b['arch'].nunique()} archs)")
        ax.set_title(LABELS.get(col, "corr(Θ_0, Θ_t)" if col == "kernel_corr" else col), fontsize=9)
        ax.set_xlabel("optimiser steps t")
        ax.legend(fontsize=6)
    fig.suptitle(f"{parts[0]}: median and quartiles per accuracy band (quantiles 0.9-1, 0.45-0.55, 0-0.1 of the "
                 f"study's archs)", fontsize=8)
    fig.tight_layout()
    paths.append(("Metric trajectories by accuracy band (the paper's Figure 2)",
                  save_figure(fig, out_dir / f"{prefix}_bands.png")))
    return paths


def section(table: pd.DataFrame, meta: dict[str, Any], figure_dir: Path, figure_link: str,
            independent: dict[str, Any] | None = None, table_link: str = "", source: str = "",
            prefix: str = "lga_t_study") -> str:
    """The whole generated section (Markdown), figures written into ``figure_dir`` (linked as ``figure_link/<name>``)."""
    missing = [c for c in ("part", "arch", "order", "step", "accuracy") if c not in table.columns]
    if missing:
        raise ValueError(f"the study table lacks the column(s) {missing}; make it with study_lga_t.py table")
    ranks = rank_rows(table)
    diffs = differences(table)
    lines = [BEGIN, "", scale_line(table, meta), ""]
    if table_link:
        lines += [f"The per-arch table: [{Path(table_link).name}]({table_link}) (every metric at every t, the "
                  f"kernel's change, training accuracy, benchmark accuracy); regenerate this section with "
                  f"`python scripts/report_lga_t.py {source or table_link}`.", ""]
    for part in parts_of(table):
        lines += [f"**{PART_TITLES.get(part, part)}.**", ""]
        lines += part_table(table, ranks, diffs, part) + [""]
        lines += search_table(table, part)
    lines += ["(Kendall tau [95 % bootstrap interval] / Spearman rho, against the benchmark's accuracy; undefined "
              "scores rank worst. Train accuracy: the mean over the last pass through the training images.)", ""]
    lines += conclusion(diffs, table)
    lines += independent_lines(independent)
    for caption, path in figures(table, ranks, diffs, figure_dir, prefix):
        lines.append(f"![{caption}]({figure_link}/{path.name})")
    lines += ["", END]
    return "\n".join(lines) + "\n"


def load(table_path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    if not table_path.exists():
        raise ValueError(f"no study table at {table_path}: run scripts/study_lga_t.py first")
    meta_path = table_path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return pd.read_csv(table_path), meta
