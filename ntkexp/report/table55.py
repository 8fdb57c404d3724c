"""GradSign's Table 5.5 in docs/RESULTS.md, generated from ``task=simulated_search`` runs (``runs.csv`` and
``summary.json`` of each run folder): per method and column our mean ± std with its standard error, the paper's mean ±
std (500 runs), and each cell whose difference from the paper exceeds 2 standard errors of the difference marked
and listed with the departure that explains it. Sentences about GradSign's help (G-X against X) are printed as
resolved only where the difference exceeds 2 of its standard errors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ntkexp.report.generated import markers
from ntkexp.stats import difference_in_se, mean_std_se

BLOCK = "table 5.5 (scripts/report_table55.py)"
PAPER_RUNS = 500
COLUMNS = {"cifar10_valid": "C-10 valid", "cifar10_test": "C-10 test", "cifar100_test": "C-100 test",
           "ImageNet16-120_test": "IN16-120 test"}
ORDER = ["RS", "G-RS", "REA", "G-REA", "A-REA", "REINFORCE", "G-REINFORCE", "HB", "G-HB", "BOHB"]


def departures(method: str, summary: dict[str, Any]) -> list[str]:
    """The known ways this run departs from the paper's protocol for ``method`` (from its own summary)."""
    cfg = summary.get("config", {})
    kwargs = cfg.get("search_space", {}).get("kwargs", {}) or {}
    batch = cfg.get("ntk", {}).get("batch_size")
    out = []
    clock = summary.get("clock", {})
    if "no per-seed values" in clock.get("answer", ""):
        out.append("each query answered with the seed mean, not one drawn seed (the shipped table has no per-seed "
                   "12-epoch accuracies)")
    if "records no validation time" in clock.get("charge", ""):
        out.append("the validation pass not charged (about 3 % of a query; not in the shipped table)")
    if method.startswith("G-") or method == "A-REA":
        metric = summary.get("a_rea_metric") if method == "A-REA" else summary.get("metric")
        network = (f"a C{kwargs.get('C')}N{kwargs.get('N')} skeleton" if kwargs else "the C16N5 network")
        out.append(f"{metric} scored on {network} at batch {batch} of the shipped probe images (the paper: C16N5, "
                   f"batch 128)")
    if method == "A-REA":
        out.append("A-REA's initial pool of 100 random archs is our choice (the paper does not give it)")
    return out


def load_runs(dirs: list[Path]) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Every method's runs, from the run folder that holds the most runs of it; and each method's summary."""
    best: dict[str, tuple[int, pd.DataFrame, dict[str, Any]]] = {}
    for d in dirs:
        runs_path, summary_path = d / "runs.csv", d / "summary.json"
        if not runs_path.exists() or not summary_path.exists():
            raise ValueError(f"{d} is not a finished task=simulated_search run (no runs.csv / summary.json)")
        frame, summary = pd.read_csv(runs_path), json.loads(summary_path.read_text())
        for method, part in frame.groupby("method"):
            if method not in best or len(part) > best[method][0]:
                best[method] = (len(part), part, summary)
    methods = sorted(best, key=lambda m: (ORDER.index(m) if m in ORDER else len(ORDER), m))
    return (pd.concat([best[m][1] for m in methods], ignore_index=True), {m: best[m][2] for m in methods})


def published(summaries: dict[str, dict[str, Any]], method: str) -> dict[str, float]:
    cfg = summaries[method].get("config", {})
    return dict(cfg.get("task", {}).get("simulated", {}).get("published", {}).get(method, {}) or {})


def section(dirs: list[Path]) -> str:
    frame, summaries = load_runs(dirs)
    columns = [c for c in COLUMNS if c in frame.columns]
    head = ["method", "runs", *[h for c in columns for h in (COLUMNS[c], "paper")], "evaluations"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    flagged: list[str] = []
    for method, part in frame.groupby("method", sort=False):
        pub = published(summaries, method)
        cells = [method, str(len(part))]
        for c in columns:
            mean, std, se, n = mean_std_se(part[c].to_numpy(dtype=float))
            mark = ""
            if c in pub and f"{c}_std" in pub:
                z = difference_in_se(mean, std, n, pub[c], pub[f"{c}_std"], PAPER_RUNS)
                if np.isfinite(z) and abs(z) > 2:
                    mark = f" ✱ ({z:+.1f} SE)"
                    why = departures(method, summaries[method])
                    flagged.append(f"- **{method}, {COLUMNS[c]}**: {mean:.2f} against the paper's {pub[c]:.2f}, "
                                   f"{z:+.1f} standard errors of the difference. "
                                   + ("Departures that can explain it: " + "; ".join(why) + "."
                                      if why else "No known departure of this run explains it."))
            cells.append(f"{mean:.2f} ± {std:.2f} (SE {se:.2f}){mark}")
            cells.append(f"{pub[c]:.2f} ± {pub[f'{c}_std']:.2f}" if c in pub and f"{c}_std" in pub else "-")
        cells.append(f"{part['evaluations'].mean():.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    any_summary = next(iter(summaries.values()))
    cfg = any_summary.get("config", {})
    sim = cfg.get("task", {}).get("simulated", {})
    algo = cfg.get("search_algo", {})
    clock = any_summary.get("clock", {})
    runs = sorted({int(n) for n in frame.groupby("method").size()})
    budget = sim.get("budget_train_seconds", sim.get("budget_seconds", 12000))  # its name before the rename
    scale = (f"**Scale.** {', '.join(str(r) for r in runs)} runs per method (the paper: {PAPER_RUNS}); NAS-Bench-201's "
             f"simulated clock, {budget:,.0f} s of the benchmark's recorded training time per "
             f"run, searched on {sim.get('dataset', 'cifar10')}'s 12-epoch validation accuracy; answers: "
             f"{clock.get('answer', 'n/a')}; charge: {clock.get('charge', 'n/a')}. REINFORCE lr "
             f"{algo.get('lr')}; BOHB model {algo.get('bohb_model', 'tpe')}; G-* pick the best of "
             f"{algo.get('pool_size')} candidates by {any_summary.get('metric')}; A-REA by "
             f"{any_summary.get('a_rea_metric')}. Device: CPU (the clock is simulated; only the metrics compute).")
    begin, end = markers(BLOCK)
    out = [begin, "", scale, "", "Mean ± std over the runs (SE: the standard error of our mean); paper: GradSign's Table "
           "5.5 (500 runs). ✱: our mean differs from the paper's by more than 2 standard errors of the difference "
           "(both stds, our n and the paper's 500).", "", *lines, ""]
    out += ["**Cells beyond 2 standard errors**" + (":" if flagged else ": none."), "", *flagged, ""]
    out += help_lines(frame, columns) + ["", end]
    return "\n".join(out) + "\n"


def help_lines(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    """G-X against X per column: the difference of means with its standard error; stated as a gain or a loss only
    beyond 2 standard errors."""
    lines = ["**GradSign's help** (G-X minus X, difference of means ± its standard error; a gain or loss is stated only "
             "beyond 2 standard errors):", ""]
    methods = set(frame["method"])
    for method in [m for m in ORDER if m.startswith("G-") and m in methods and m[2:] in methods]:
        parts = []
        for c in columns:
            a = frame.loc[frame.method == method[2:], c].to_numpy(dtype=float)
            b = frame.loc[frame.method == method, c].to_numpy(dtype=float)
            diff = float(np.mean(b) - np.mean(a))
            se = math.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b))
            verdict = ("gain" if diff > 0 else "loss") if abs(diff) > 2 * se else "not resolved"
            parts.append(f"{COLUMNS[c]} {diff:+.2f} ± {se:.2f} ({verdict})")
        lines.append(f"- {method} against {method[2:]}: " + "; ".join(parts) + ".")
    return lines
