"""``task=correlate``: score archs and rank-correlate the scores with the benchmark's final accuracy.

Writes to the run directory: ``scores.csv`` (arch, index, one column per metric, accuracy, flags, seconds, cached),
``summary.json`` (Kendall tau / Spearman rho / top-k precision per metric, every convention, versions),
``scatter.png`` (metric vs accuracy), and logs the same to the configured logger.
"""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from ntkexp.io import atomic_write
from ntkexp.loggers import ExperimentLogger
from ntkexp.metrics import combine
from ntkexp.plotting import pyplot, save_figure
from ntkexp.stats import correlation_table
from ntkexp.tasks.common import ArchScorer, Setup, build_setup, direction_of, progress, versions, write_json

log = logging.getLogger("ntkexp")


def decile_pool(accuracy: pd.Series, decile: int, n_deciles: int = 10) -> list[str]:
    """The archs of accuracy decile P<decile> (P1 = the best 1/n_deciles) of the benchmark (Mok et al., Sec. 3.3)."""
    if not 1 <= decile <= n_deciles:
        raise ValueError(f"task.decile={decile} must be between 1 and task.n_deciles={n_deciles}")
    ranked = accuracy.dropna().sort_values(ascending=False, kind="stable")
    n = len(ranked)
    return list(ranked.index[(decile - 1) * n // n_deciles : decile * n // n_deciles])


def read_arch_file(path: Path) -> list[str]:
    """The archs listed in a text file, one per line; blank lines and lines starting with '#' are skipped."""
    if not path.is_file():
        raise FileNotFoundError(f"archs_file {path} does not exist (give a text file with one arch per line)")
    archs = [line.strip() for line in path.read_text().splitlines()]
    archs = [a for a in archs if a and not a.startswith("#")]
    if not archs:
        raise ValueError(f"archs_file {path} lists no archs")
    return archs


def choose_archs(cfg: DictConfig, setup: Setup) -> list[str]:
    """The named list ``archs`` (and/or the lines of ``archs_file``), else ``n_archs`` drawn without replacement (by
    ``seed``) from the ground truth's archs (or from one accuracy decile, ``task.decile``), else (``n_archs=null``)
    all of them."""
    assert setup.ground_truth is not None
    available = setup.ground_truth.archs()
    decile = cfg.task.get("decile")
    if decile is not None:
        available = decile_pool(setup.ground_truth.frame[setup.data_cfg.benchmark_key], int(decile),
                                int(cfg.task.get("n_deciles", 10)))
    named = list(cfg.archs or [])
    if cfg.get("archs_file"):
        named += read_arch_file(Path(str(cfg.archs_file)))
    if named:
        archs = [setup.space.validate(a) for a in named]
        missing = [a for a in archs if a not in set(available)]
        if missing:
            raise ValueError(f"{len(missing)} of the named archs have no ground truth, e.g. {missing[0]}")
        return archs
    if cfg.n_archs is None:
        return available
    n = int(cfg.n_archs)
    if n < 2:
        raise ValueError(f"n_archs={n}: a rank correlation needs at least 2 archs")
    if n > len(available):
        raise ValueError(f"n_archs={n} but the ground truth has only {len(available)} archs (use n_archs=null for all)")
    rng = np.random.default_rng(int(cfg.seed))
    return [available[i] for i in sorted(rng.choice(len(available), size=n, replace=False))]


def scatter_figure(frame: pd.DataFrame, metric_names: list[str], title: str, ylabel: str) -> Any:
    """One panel per metric (at most 5 a row), metric against accuracy, under ``title`` wrapped to the figure's
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
        if name in ("ncn", "cond", "fnorm", "mean") and len(x) and (np.all(x > 0) or np.all(x < 0)):
            ax.set_xscale("symlog" if np.any(x < 0) else "log")
        ax.scatter(x, frame["accuracy"].to_numpy()[ok], s=8, alpha=0.6)
        ax.set_xlabel(name + ("" if ok.all() else f"  ({(~ok).sum()} undefined not shown)"))
        ax.set_ylabel(ylabel)
    fig.suptitle("\n".join(lines), fontsize=8.5)
    fig.tight_layout()
    return fig


def scatter_plot(frame: pd.DataFrame, metric_names: list[str], path: Path, title: str, ylabel: str) -> Path:
    """:func:`scatter_figure` written to ``path`` as PNG."""
    return save_figure(scatter_figure(frame, metric_names, title, ylabel), path)


def print_table(summary: dict[str, Any]) -> None:
    """What was scored, in words, then the table of rank correlations and one plain line per metric."""
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


def run_correlate(cfg: DictConfig, run_dir: Path, logger: ExperimentLogger) -> dict[str, Any]:
    setup = build_setup(cfg)
    archs = choose_archs(cfg, setup)
    scorer = ArchScorer(setup)
    device_note = ""
    if setup.device.type == "cpu" and len(archs) * setup.batch_size > 20000:
        device_note = (f"running on CPU: {len(archs)} archs at batch {setup.batch_size} may take long; "
                       "big studies belong on a GPU (device=cuda)")
        log.warning(device_note)
    log.info("scoring %d archs with %s (bn_mode=%s, init=%s, batch %d) on %s", len(archs),
             ",".join(setup.metric_names), setup.ntk_cfg.bn_mode, setup.init_cfg.name, setup.batch_size, setup.device)
    rows = [scorer.score(a) for a in progress(archs, "scoring", bool(cfg.task.progress))]
    frame = pd.DataFrame(rows)
    key = setup.data_cfg.benchmark_key
    assert setup.ground_truth is not None
    frame["accuracy"] = setup.ground_truth.accuracy(list(frame["arch"]), key)
    for name in scorer.combinations:  # rank aggregations over the scored set
        frame[name] = combine(name, {c: frame[c].to_numpy() for c in frame.columns})
    names = scorer.metric_names + scorer.combinations
    errors = frame["flags"].str.contains("error:")
    if errors.all():
        first = frame.loc[errors, "error"].iloc[0] if "error" in frame else "unknown"
        raise RuntimeError(f"every arch failed to score; the first error: {first}")

    extra = [c for c in ("kernel_corr", "kernel_rel_diff", "train_loss", "train_acc") if c in frame]
    columns = ["arch", "index", *names, *extra, "accuracy", "flags", "seconds", "cached"]
    with atomic_write(run_dir / "scores.csv") as tmp:
        frame[columns + (["error"] if "error" in frame else [])].to_csv(tmp, index=False)

    top_k = [float(k) for k in cfg.task.top_k]
    summary: dict[str, Any] = {
        "task": "correlate",
        "n_archs": len(frame),
        **scorer.description(),
        "accuracy_label": f"{setup.ground_truth.label or 'accuracy'} [{key}]",
        "correlations": correlation_table(frame, {n: direction_of(n) for n in names}, top_k),
        "directions": {n: direction_of(n) for n in names},
        "conventions": scorer.conventions,
        "n_flagged": int((frame["flags"] != "").sum()),
        "n_computed": scorer.n_computed,
        "n_cached": scorer.n_cached,
        "score_seconds_total": float(frame["seconds"].sum()),
        "device": str(setup.device),
        "device_note": device_note,
        "versions": versions(),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    write_json(run_dir / "summary.json", summary)

    flat = {f"{m}/{k}": v for m, row in summary["correlations"].items() for k, v in row.items() if k != "direction"}
    logger.log_summary({**flat, "n_archs": len(frame), "n_flagged": summary["n_flagged"]})
    logger.log_table("scores", frame[columns])
    if cfg.task.plot:
        title = (f"{summary['network']}, {len(frame)} archs; {summary['data']}; NTK {summary['convention']}; "
                 f"against {summary['accuracy_label']}")
        plot = scatter_plot(frame, names, run_dir / "scatter.png", title, f"{key} accuracy (%)")
        logger.log_image("scatter", plot)
    print_table(summary)
    setup.store.close()
    return summary
