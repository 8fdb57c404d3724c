"""What every task shares: building the pieces from a config, and scoring one arch with caching and flags."""

from __future__ import annotations

import json
import logging
import math
import platform
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from ntkexp.benchmarks import BenchmarkConfig, GroundTruth, load_ground_truth
from ntkexp.io import write_json  # noqa: F401  (re-exported for the tasks)
from ntkexp.data import ArrayDataModule, DataConfig, require_training_set
from ntkexp.init import InitConfig, arch_seed, initialize
from ntkexp.metrics import COMBINATIONS, METRICS, MetricContext, compute_metrics, direction_of, expand  # noqa: F401
from ntkexp.ntk import NTKConfig
from ntkexp.spaces import SearchSpace, build_space
from ntkexp.store import ScoreStore, config_key
from ntkexp.train import KernelTracker, TrainConfig, train_for

log = logging.getLogger("ntkexp")
SCORE_SCHEMA = 1  # bump when a change to the scoring code changes scores, so old cache rows are not reused


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={name} asked for, but no CUDA device is available (use device=cpu or auto)")
    return torch.device(name)


def to_dataclass(cls: type, node: Any) -> Any:
    data = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    return cls(**data)


def versions() -> dict[str, str]:
    import hydra
    import lightning
    import pandas
    import scipy

    import ntkexp

    return {"python": sys.version.split()[0], "platform": platform.platform(), "torch": torch.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__, "pandas": pandas.__version__,
            "hydra": hydra.__version__, "lightning": lightning.__version__, "ntkexp": ntkexp.__version__}


@dataclass
class Setup:
    """The built pieces of a run."""

    cfg: DictConfig
    space: SearchSpace
    ground_truth: GroundTruth | None
    datamodule: ArrayDataModule
    data_cfg: DataConfig
    metric_names: list[str]
    ntk_cfg: NTKConfig
    init_cfg: InitConfig
    device: torch.device
    batch_size: int
    store: ScoreStore
    train_cfg: TrainConfig
    extra_key: dict[str, Any] = field(default_factory=dict)


def validate_metric_names(names: Iterable[str]) -> list[str]:
    names = list(names)
    valid = ", ".join(METRICS.names() + sorted(COMBINATIONS))
    if not names:
        raise ValueError(f"metric.names is empty; valid metrics: {valid}")
    for name in names:
        if name not in METRICS and name not in COMBINATIONS:
            raise ValueError(f"unknown metric {name!r}; valid metrics: {valid}")
    return names



def build_setup(cfg: DictConfig, need_ground_truth: bool = True) -> Setup:
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    names = validate_metric_names(cfg.metric.names)
    ntk = cfg.ntk
    ntk_cfg = NTKConfig(**{k: v for k, v in OmegaConf.to_container(ntk, resolve=True).items() if k != "batch_size"})
    init_cfg = to_dataclass(InitConfig, cfg.init)
    data_cfg = to_dataclass(DataConfig, cfg.dataset)
    if ntk_cfg.reduction == "logit" and not 0 <= ntk_cfg.logit_index < data_cfg.num_classes:
        raise ValueError(f"ntk.logit_index={ntk_cfg.logit_index} is not a class of {data_cfg.name} "
                         f"(0..{data_cfg.num_classes - 1})")
    sp = cfg.search_space
    space = build_space(sp.name, **{"C": sp.C, "N": sp.N, **sp.kwargs})
    ground_truth = None
    if need_ground_truth:
        ground_truth = load_ground_truth(to_dataclass(BenchmarkConfig, sp.benchmark))
        ground_truth.require(data_cfg.benchmark_key,
                             f"; dataset={data_cfg.name} does not go with this search_space's benchmark")
        ground_truth.validate_archs(space.validate)
    device = resolve_device(cfg.device)
    datamodule = ArrayDataModule(data_cfg, seed=int(cfg.seed), device=device)
    store_path = Path(cfg.paths.cache_dir) / "scores.sqlite" if cfg.use_cache else None
    return Setup(cfg=cfg, space=space, ground_truth=ground_truth, datamodule=datamodule, data_cfg=data_cfg,
                 metric_names=names, ntk_cfg=ntk_cfg, init_cfg=init_cfg, device=device,
                 batch_size=int(ntk.batch_size), store=ScoreStore(store_path),
                 train_cfg=to_dataclass(TrainConfig, cfg.trainer))


class ArchScorer:
    """Scores archs with every configured metric from one NTK per arch, through the durable cache.

    The network of an arch is initialised from ``arch_seed(seed, arch)``, so its score does not depend on which
    archs were scored before it (resumed and parallel runs give the same numbers).
    """

    def __init__(self, setup: Setup) -> None:
        self.s = setup
        self.seed = int(setup.cfg.seed)
        self.x, self.y = setup.datamodule.probe_batch(setup.batch_size, self.seed)
        self.metric_names, self.combinations = expand(setup.metric_names)
        needs = {need for n in self.metric_names for need in METRICS.get(n).needs}
        self.x_test = self.y_test = None
        if any(need.startswith("joint_kernel") for need in needs):  # a held-out batch for kernel regression
            self.x_test, self.y_test = setup.datamodule.probe_batch(setup.batch_size, self.seed, split="test")
        self.conventions = {
            "search_space": setup.space.describe(),
            "ntk": {**setup.ntk_cfg.as_dict(), "batch_size": setup.batch_size},
            "init": asdict(setup.init_cfg),
            "dataset": {"name": setup.data_cfg.name, "kind": setup.data_cfg.kind,
                        "resolution": setup.data_cfg.resolution, "mean": list(setup.data_cfg.mean),
                        "std": list(setup.data_cfg.std)},
            "seed": self.seed,
            "train_epochs": int(setup.cfg.metric.train_epochs),
            **setup.extra_key,
        }
        self.train_epochs = int(setup.cfg.metric.train_epochs)
        if self.train_epochs < 0:
            raise ValueError(f"metric.train_epochs must be >= 0, got {self.train_epochs}")
        if self.train_epochs > 0:
            require_training_set(setup.data_cfg, f"metric.train_epochs={self.train_epochs}")
        train = asdict(setup.train_cfg)
        train.pop("epochs")
        self.training_conventions = {"trainer": train, "data": asdict(setup.data_cfg)}
        if self.train_epochs > 0:  # what the short training depends on
            self.conventions["training"] = self.training_conventions
        self.n_computed = 0
        self.n_cached = 0

    def description(self) -> dict[str, str]:
        """What was computed, in words: the network, the data, the conventions (for tables, titles, summaries)."""
        s = self.s
        n_train = len(s.datamodule.train_tensors[1])
        when = "at initialisation" if self.train_epochs == 0 else f"after {self.train_epochs} epoch(s) of training"
        return {
            "network": s.space.label(),
            "data": f"{s.data_cfg.label or s.data_cfg.name}; probe batch of {s.batch_size} of its {n_train:,} "
                    f"training images (drawn by seed {self.seed})",
            "convention": f"{when}; BN {s.ntk_cfg.bn_mode}, init {s.init_cfg.name}, output reduction "
                          f"{s.ntk_cfg.reduction}, params {s.ntk_cfg.params}, {s.ntk_cfg.dtype}",
        }

    def key(self, arch: str) -> str:
        return config_key({"schema": SCORE_SCHEMA, "arch": arch, **self.conventions})

    def checkpoint_dir(self, arch: str) -> Path | None:
        """Where the short-training states of ``arch`` (every epoch count) are kept; None without a cache."""
        if self.s.store.path is None:
            return None
        shared = {k: v for k, v in self.conventions.items() if k != "train_epochs"}
        shared["training"] = self.training_conventions
        return self.s.store.path.parent / "checkpoints" / config_key({"schema": SCORE_SCHEMA, "arch": arch, **shared})

    def tracked(self, arch: str, epochs: list[int]) -> KernelTracker:
        """Train ``arch`` to max(epochs), measuring metrics and kernel evolution at ``epochs`` (0 always)."""
        model = self.build_model(arch)
        tracker = KernelTracker(self.x, self.y, self.s.data_cfg.num_classes, self.s.ntk_cfg, self.metric_names,
                                sorted(set([0, *epochs])), x_test=self.x_test, y_test=self.y_test, seed=self.seed)
        last = max(epochs)
        if last == 0:
            tracker.measure(model, 0)
        else:
            train_for(model, self.s.datamodule, self.s.train_cfg, last, tracker, self.checkpoint_dir(arch))
        return tracker

    def build_model(self, arch: str) -> torch.nn.Module:
        torch.manual_seed(arch_seed(self.seed, arch))
        model = self.s.space.build(arch, num_classes=self.s.data_cfg.num_classes, in_channels=self.s.data_cfg.in_channels)
        return initialize(model, self.s.init_cfg).to(self.s.device)

    def score(self, arch: str) -> dict[str, Any]:
        """{arch, <metric>: value..., flags, seconds, cached} for one arch (never raises on a bad network)."""
        arch = self.s.space.validate(arch)
        key = self.key(arch)
        cached = self.s.store.get(key) if self.s.store is not None else None
        names = self.metric_names
        if cached is not None and all(n in cached["values"] for n in names):
            self.n_cached += 1
            return self._row(arch, cached, cached=True)
        start = time.perf_counter()
        try:
            extra: dict[str, float] = {}
            if self.train_epochs > 0:
                tracker = self.tracked(arch, [self.train_epochs])
                at_t = [r for r in tracker.records if r["epoch"] == self.train_epochs][-1]
                values = {n: float(at_t[n]) for n in names}
                extra = {k: float(at_t[k]) for k in ("kernel_corr", "kernel_rel_diff", "train_loss", "train_acc")}
                flags = [f for f in at_t["flags"].split(";") if f]
            else:
                ctx = MetricContext(self.build_model(arch), self.x, self.y, self.s.data_cfg.num_classes, self.s.ntk_cfg,
                                    x_test=self.x_test, y_test=self.y_test, seed=self.seed)
                values = compute_metrics(names, ctx)
                flags = sorted(ctx.flags)
            error = None
        except Exception as err:  # a bad network must not end a run over 15,625 archs
            values = {n: float("nan") for n in names}
            extra = {}
            flags = [f"error:{type(err).__name__}"]
            error = f"{type(err).__name__}: {err}"
            log.warning("arch %s failed: %s\n%s", arch, error, traceback.format_exc(limit=3))
        record = {"values": {**(cached or {}).get("values", {}), **values}, "extra": extra,
                  "flags": sorted(set((cached or {}).get("flags", [])) | set(flags)),
                  "seconds": time.perf_counter() - start, "error": error}
        if error is None and self.s.store is not None:
            self.s.store.put(key, record)
        self.n_computed += 1
        return self._row(arch, record, cached=False)

    def _row(self, arch: str, record: dict[str, Any], cached: bool) -> dict[str, Any]:
        row: dict[str, Any] = {"arch": arch}
        try:
            row["index"] = self.s.space.index_of(arch)
        except NotImplementedError:
            row["index"] = None
        for n in self.metric_names:
            v = record["values"].get(n)
            row[n] = float("nan") if v is None else float(v)
        for k, v in record.get("extra", {}).items():
            row[k] = v
        row["flags"] = ";".join(record["flags"])
        row["seconds"] = round(float(record["seconds"]), 4)
        row["cached"] = cached
        if record.get("error"):
            row["error"] = record["error"]
        return row


def progress(items: list[Any], description: str, enabled: bool = True, *, every_s: float = 60.0,
             interactive: bool | None = None) -> Iterator[Any]:
    """Iterate with a rich progress bar on a terminal; elsewhere (a log file, a SLURM job) log one line with
    the count, the rate and the time left every ``every_s`` seconds and at each tenth of the work."""
    if not enabled:
        yield from items
        return
    if interactive is None:
        interactive = sys.stderr.isatty()
    if not interactive:
        total, step = len(items), max(1, len(items) // 10)
        start = last = time.perf_counter()
        for done, item in enumerate(items, 1):
            yield item
            now = time.perf_counter()
            if done == total or done % step == 0 or now - last >= every_s:
                rate = (now - start) / done
                log.info("%s: %d/%d done, %.1f s each, about %.0f s left", description, done, total, rate,
                         rate * (total - done))
                last = now
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), transient=False) as bar:
        task = bar.add_task(description, total=len(items))
        for item in items:
            yield item
            bar.advance(task)


def finite_or_none(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value
