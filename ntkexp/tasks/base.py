"""What every task shares: the task registry (a task declares its run, its settings and its traits) and the
one output helper through which it writes its tables, figures and summary."""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from hydra.core.config_store import ConfigStore

from ntkexp.config import SearchAlgoConfig, TaskConfig
from ntkexp.io import atomic_write, write_json
from ntkexp.loggers import ExperimentLogger
from ntkexp.places import source_commit
from ntkexp.plotting import save_figure
from ntkexp.registry import Registry
from ntkexp.scoring import ArchScorer, RunContext
from ntkexp.search import SEARCH_ALGOS


def versions() -> dict[str, str]:
    """The versions a summary records, read from the installed packages' metadata (importing Lightning to ask it
    would load it into a run that does not train)."""
    import ntkexp

    def installed(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {"python": sys.version.split()[0], "platform": platform.platform(), "torch": torch.__version__,
            "numpy": np.__version__, "scipy": installed("scipy"), "pandas": pd.__version__,
            "hydra": installed("hydra-core"), "lightning": installed("lightning"), "ntkexp": ntkexp.__version__,
            "ntkexp_commit": source_commit()}


class RunOutput:
    """Writes a task's results into the run directory (each file all or nothing) and hands them to the logger."""

    def __init__(self, run_dir: Path, logger: ExperimentLogger, ctx: RunContext) -> None:
        self.run_dir, self.logger, self.ctx = run_dir, logger, ctx
        self.plots = ctx.config.task.plot

    def table(self, name: str, frame: pd.DataFrame, log: bool = True) -> Path:
        """``<name>.csv``, and the table on the dashboard."""
        path = self.run_dir / f"{name}.csv"
        with atomic_write(path) as tmp:
            frame.to_csv(tmp, index=False)
        if log:
            self.logger.log_table(name, frame)
        return path

    def figure(self, name: str, draw: Callable[[], Any]) -> Path | None:
        """``<name>.png`` from the figure ``draw()`` returns (when ``task.plot``), and on the dashboard."""
        if not self.plots:
            return None
        path = save_figure(draw(), self.run_dir / f"{name}.png")
        self.logger.log_image(name, path)
        return path

    def scores(self, frame: pd.DataFrame, names: list[str]) -> None:
        """``scores.csv`` (one row per arch: its scores, train stats and accuracy where there are any, flags, seconds,
        and the error of an arch that failed) and the same table, without the errors, on the dashboard."""
        optional = [c for c in ("train_loss", "train_acc", "accuracy") if c in frame]
        columns = ["arch", "index", *names, *optional, "flags", "seconds", "cached"]
        self.table("scores", frame[columns + (["error"] if "error" in frame else [])], log=False)
        self.logger.log_table("scores", frame[columns])

    def training_curves(self, curves: list[dict[str, Any]]) -> None:
        """The training steps a run took (``training_curves.csv``: arch, epoch, step, loss, acc), on the dashboard as
        a table and as step-by-step ``train/loss`` and ``train/acc`` series."""
        if not curves:
            return
        self.table("training_curves", pd.DataFrame(curves))
        for i, row in enumerate(curves):
            self.logger.log_metrics({"train/loss": row["loss"], "train/acc": row["acc"], "train/step": i,
                                     "train/epoch": row["epoch"]})

    def summary(self, task: str, payload: dict[str, Any], dashboard: dict[str, Any], scorer: ArchScorer | None = None,
                epochs: int | None = None, conventions: dict[str, Any] | None = None) -> dict[str, Any]:
        """``summary.json``: the task's ``payload``; what every task records besides: what ``scorer`` computed, in
        words (at ``epochs`` of training; default the run's), the ground truth's provenance (where there is one), the
        conventions (the scorer's, with ``conventions`` added), the device, library versions and the whole resolved
        config; ``dashboard`` (flat numbers) goes to the logger's summary."""
        common: dict[str, Any] = {**scorer.description(epochs)} if scorer is not None else {}
        if scorer is not None and scorer.table is not None:  # scores read, not computed: say from where
            common["score_table"] = {"path": scorer.table.path, "provenance": scorer.table.provenance,
                                     "archs_read": scorer.n_from_table}
        if self.ctx.ground_truth is not None:
            common["ground_truth"] = self.ctx.ground_truth.provenance()
        own = scorer.conventions if scorer is not None else {}
        summary = {"task": task, **payload, **common, "conventions": {**own, **(conventions or {})},
                   "device": str(self.ctx.device), "cpu_threads": torch.get_num_threads(),
                   "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""), "versions": versions(),
                   "config": self.ctx.resolved}
        write_json(self.run_dir / "summary.json", summary)
        self.logger.log_summary(dashboard)
        return summary


class DashboardProgress:
    """Per-arch progress on the dashboard while a long task runs (so a run of hours shows something from its first
    arch): the archs done, each arch's seconds and values, and, every ``every`` archs and at the last, the running
    Kendall tau of each series against the benchmark accuracy over the archs done so far. ``series``: the name of
    each value logged -> the metric whose direction orients it."""

    def __init__(self, out: RunOutput, series: dict[str, str], total: int, every: int | None = None) -> None:
        from ntkexp.metrics import direction_of

        self.out, self.total = out, total
        self.directions = {name: direction_of(metric) for name, metric in series.items()}
        self.every = every or max(1, total // 50)
        self.values: dict[str, list[float]] = {name: [] for name in series}
        self.accuracy: list[float] = []
        self.ground_truth = out.ctx.ground_truth

    def arch_done(self, arch: str, values: dict[str, float], seconds: float, cached: bool) -> None:
        from ntkexp.metrics import oriented
        from ntkexp.stats import STATISTICS

        done = len(self.accuracy) + 1
        acc = (float(self.ground_truth.accuracy([arch], self.out.ctx.accuracy_key)[0])
               if self.ground_truth is not None else math.nan)
        self.accuracy.append(acc)
        metrics: dict[str, Any] = {"progress/archs_done": done, "progress/fraction": done / max(self.total, 1),
                                   "progress/arch_seconds": float(seconds), "progress/cached": int(cached)}
        for name in self.values:
            value = float(values.get(name, math.nan))
            self.values[name].append(value)
            metrics[f"arch/{name}"] = value
        if done >= 3 and (done % self.every == 0 or done == self.total) and self.ground_truth is not None:
            acc_so_far = np.asarray(self.accuracy)
            known = np.isfinite(acc_so_far)
            for name, direction in self.directions.items():
                ranked = oriented(np.asarray(self.values[name])[known], direction)
                if known.sum() >= 3 and np.isfinite(ranked).sum() >= 3:
                    metrics[f"running/{name}/kendall_tau"] = float(STATISTICS["kendall_tau"](ranked,
                                                                                             acc_so_far[known]))
        self.out.logger.log_metrics(metrics)


def top_k_fractions(top_k: list[float]) -> list[float]:
    """``task.top_k`` checked: each a fraction of the archs in (0, 1]."""
    bad = [k for k in top_k if not 0 < k <= 1]
    if bad:
        raise ValueError(f"task.top_k={list(top_k)}: each is a fraction of the archs in (0, 1] (0.1 = the top 10 %), "
                         f"not {bad[0]}")
    return list(top_k)


RunFn = Callable[[RunContext, RunOutput], dict[str, Any]]


@dataclass(frozen=True)
class Task:
    """A task: ``run(ctx, out) -> summary`` (its part of a sweep report is registered in ``ntkexp.report``).
    ``spaces``: the search spaces the task runs on (empty: every space), checked before any data is loaded. ``config``: its settings (a
    :class:`~ntkexp.config.TaskConfig` subclass; ``task=<name>`` composes on it). ``search_settings``: the
    ``search_algo`` settings it reads (None: it runs no search algorithm); with ``one_algorithm``, also those of the
    algorithm ``search_algo.name`` (else of every algorithm: it runs several)."""

    name: str
    run: RunFn
    spaces: tuple[str, ...] = ()
    needs_ground_truth: bool = True  # False: runs with no benchmark installed (task=score)
    config: type[TaskConfig] = TaskConfig
    search_settings: tuple[str, ...] | None = None
    one_algorithm: bool = True

    def check_space(self, space: str) -> None:
        """Refuse, in one line, a search space this task does not run on."""
        if self.spaces and space not in self.spaces:
            raise ValueError(f"task={self.name} runs on search_space={' or '.join(self.spaces)} only, not "
                             f"search_space={space}")

    def settings(self) -> list[str]:
        """The names of its own settings (``task.<name>``)."""
        return [f.name for f in dataclasses.fields(self.config)]

    def check_search_algo(self, algo: SearchAlgoConfig) -> None:
        """Refuse, in one line, a ``search_algo`` setting (changed from its default) that this task does not read, and
        a number that is not finite (``lr=nan`` would end a search later in a message that does not name it). A
        setting another algorithm has and this one lacks is refused by its schema when Hydra composes."""
        for f in dataclasses.fields(algo):
            value = getattr(algo, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"search_algo.{f.name}={value!r} is not a finite number; give a real value")
        defaults = type(algo)()
        changed = [f.name for f in dataclasses.fields(algo) if getattr(algo, f.name) != getattr(defaults, f.name)]
        if algo.name != SearchAlgoConfig.name:
            changed.insert(0, "name")
        own = SEARCH_ALGOS.get(algo.name).own_settings if algo.name in SEARCH_ALGOS else ()
        if self.search_settings is None:
            allowed: set[str] = set()
        elif self.one_algorithm:
            allowed = {*self.search_settings, *own}
        else:
            allowed = set(self.search_settings)
        bad = [k for k in dict.fromkeys(changed) if k not in allowed]
        if not bad:
            return
        setting = bad[0]
        if self.search_settings is None:
            why = f"task={self.name} runs no search algorithm"
        elif not self.one_algorithm and setting in own:
            why = (f"task={self.name} runs several algorithms and takes each one's settings under its name: "
                   f"task.algorithms.{algo.name}.{setting}=...")
        else:
            why = f"task={self.name} does not read it"
        raise ValueError(f"search_algo.{setting}={getattr(algo, setting)!r} does not apply: {why} (it would be ignored)")


TASKS: Registry[Task] = Registry("task")


def register_task(name: str, *, spaces: tuple[str, ...] = (),
                  needs_ground_truth: bool = True, config: type[TaskConfig] = TaskConfig,
                  search_settings: tuple[str, ...] | None = None, one_algorithm: bool = True) -> Callable[[RunFn], RunFn]:
    """Register ``fn(ctx, out) -> summary`` as task ``name`` with its traits (see
    :class:`Task`); its settings schema goes into Hydra's config store as ``task_schema/<name>``, which
    ``conf/task/<name>.yaml`` names first in its defaults."""
    if not (dataclasses.is_dataclass(config) and issubclass(config, TaskConfig)):
        raise ValueError(f"task {name!r}: config must be a TaskConfig dataclass, got {config!r}")

    def wrap(fn: RunFn) -> RunFn:
        TASKS.register(name, Task(name, fn, spaces, needs_ground_truth, config, search_settings, one_algorithm))
        ConfigStore.instance().store(group="task_schema", name=name, node=config)
        return fn

    return wrap
