"""Structured configs: the typed schema every composed config is validated against.

``register_configs()`` puts :class:`RunConfig` in Hydra's ConfigStore as ``ntkexp_schema``; ``conf/config.yaml``
lists it first in its defaults, so a key that does not exist or a value of the wrong type is refused at composition
with OmegaConf's message, and an unknown group option (``metric=nc``) is refused by Hydra with the list of options.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from ntkexp.benchmarks import BenchmarkConfig
from ntkexp.data import DataConfig
from ntkexp.init import InitConfig
from ntkexp.loggers import LoggerConfig
from ntkexp.metrics import default_settings
from ntkexp.ntk import NTKConfig
from ntkexp.places import user_place
from ntkexp.train import TrainConfig


@dataclass
class SpaceConfig:
    """Config group ``search_space``: which space, the settings its networks are built with (``kwargs``: the space's
    constructor arguments, e.g. ``C`` and ``N`` for NAS-Bench-201), and where its ground truth is."""

    name: str = "nasbench201"
    kwargs: dict[str, Any] = field(default_factory=dict)
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)


@dataclass
class MetricConfig:
    """Config group ``metric``: the scores computed per arch (metrics share one NTK; ``all`` is every metric and
    combination), the first being the primary one, and after how many epochs of training (0: at initialisation)."""

    names: list[str] = field(default_factory=lambda: ["lga"])
    train_epochs: int = 0
    # at initialisation, average each metric over this many independent probe batches and initialisations (TEG-NAS: 3)
    repeats: int = 1
    # the settings of metrics with settings of their own (metric name -> field values), each declared by its metric
    # (register_metric(..., settings=<dataclass>)); the defaults of every registered one are here
    settings: dict[str, Any] = field(default_factory=default_settings)


@dataclass
class SearchAlgoConfig:
    """Config group ``search_algo``: what every search algorithm has (the budget, how the result is derived, where
    archs are drawn from, the metric-assisted variants' pools). Each algorithm declares its own settings as a
    subclass of this beside its code (``register_search_algo(..., config=...)``, e.g.
    :class:`~ntkexp.search.algorithms.REAConfig`); the option ``search_algo=<name>`` composes on that schema, so a
    setting of another algorithm is refused. The defaults are NAS-Bench-201's / GradSign's reference settings;
    ``conf/search_algo/*_tegnas.yaml`` and ``rea_lga.yaml`` are the papers' presets."""

    name: str = "random"  # random | rea | reinforce | hb | bohb (task=search; simulated_search names its methods)
    budget_evals: int | None = 100  # unique archs scored (task=search); None: no such limit (another budget decides)
    budget_score_seconds: float | None = None  # recorded scoring compute, if set (task=search)
    derive: str = "best_evaluated"  # best_evaluated | population (rea) | policy_argmax (reinforce)
    restrict_to_benchmark: bool | None = None  # None: when the ground truth does not cover the whole space
    pool_size: int = 10  # metric-assisted (G-) steps: candidates scored by the metric to evaluate one (GradSign: 10)
    init_pool: int = 100  # A-REA: random archs the initial population is chosen from by the metric (our choice)


@dataclass
class TaskConfig:
    """Config group ``task``: what every task has. Each task declares its own settings as a subclass of this, beside
    its code (``register_task(..., config=...)``); the option ``task=<name>`` composes on that schema, so a setting
    of another task is refused."""

    name: str = "correlate"
    plot: bool = True
    progress: bool = True


@dataclass
class PathsConfig:
    data_root: str = "./data"
    cache_dir: str = "./.cache"
    output_dir: str = "."


@dataclass
class RunConfig:
    task: TaskConfig = field(default_factory=TaskConfig)
    search_space: SpaceConfig = field(default_factory=SpaceConfig)
    metric: MetricConfig = field(default_factory=MetricConfig)
    init: InitConfig = field(default_factory=InitConfig)
    ntk: NTKConfig = field(default_factory=NTKConfig)
    dataset: DataConfig = field(default_factory=DataConfig)
    search_algo: SearchAlgoConfig = field(default_factory=SearchAlgoConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    trainer: TrainConfig = field(default_factory=TrainConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    seed: int = 0
    target: str = "test"  # the accuracy ranked against: test (final test) | valid (final validation, <key>_valid)
    n_archs: int | None = 100  # null: every arch the ground truth has
    archs: list[str] | None = None  # a named list instead of sampling
    archs_file: str | None = None  # or a text file of archs, one per line ('#' starts a comment)
    use_cache: bool = True
    score_table: str | None = None  # precomputed scores at init (.npz, ntkexp.scoring.table): read, conventions checked
    plugins: list[str] = field(default_factory=list)  # modules of the user's own to import first (they register)
    download: bool = True  # fetch a missing public data set or benchmark file (ntkexp.downloads); false: say how
    download_mirror: str | None = None  # fetch from <mirror>/<file name> instead of each file's own URL
    device: str = "auto"  # auto | cpu | cuda
    threads: int | None = None  # torch CPU threads (None: the usable cores / the jobs a launcher runs at once)
    name: str = MISSING  # run name (set in config.yaml from the choices)


def metric_label(names: Any) -> str:
    """The metric part of a run's name: the ``metric=`` option chosen (``ntk``, ``zero_cost``, ...) when Hydra ran
    the job, else the metric names (at most three, then how many more)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        chosen = HydraConfig.get().runtime.choices.get("metric")
        if chosen:
            return str(chosen)
    names = [str(n) for n in names]
    return "+".join(names[:3]) + (f"+{len(names) - 3}more" if len(names) > 3 else "")


def register_configs() -> None:
    """The schema for Hydra's config store, and the ``ntkexp_run_id`` resolver: this process's id, which makes the
    default run directory unique to the run (runs started in the same second never share one)."""
    OmegaConf.register_new_resolver("ntkexp_place", user_place, use_cache=False, replace=True)
    OmegaConf.register_new_resolver("ntkexp_metric_label", metric_label, replace=True)
    OmegaConf.register_new_resolver("ntkexp_run_id", lambda: str(os.getpid()), use_cache=True, replace=True)
    ConfigStore.instance().store(name="ntkexp_schema", node=RunConfig)
