"""The typed run context: every piece of a run built once from the composed config, and nothing raw passed on.

:meth:`RunContext.build` turns the config (a :class:`~ntkexp.config.RunConfig`, or the ``DictConfig`` Hydra composed,
converted here and only here) into the search space, the ground truth, the data module, the device, the score cache
and the metric selection. Tasks, the scorer and search read from it.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from ntkexp.benchmarks import GroundTruth, load_ground_truth
from ntkexp.downloads import DownloadSettings, fetcher
from ntkexp.config import RunConfig
from ntkexp.data import ArrayData, DataConfig
from ntkexp.init import InitConfig
from ntkexp.metrics import MetricSelection, expand
from ntkexp.ntk import NTKConfig
from ntkexp.spaces import SPACES, SearchSpace
from ntkexp.store import CACHE_FILE, ScoreStore
from ntkexp.train import TrainConfig


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={name} asked for, but no CUDA device is available (use device=cpu or auto)")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device={name!r} is not a device; use auto, cpu, cuda or cuda:<index>") from None
    if device.type not in ("cpu", "cuda"):  # mps, xpu, ...: the NTK engine and training are tested on CPU and CUDA
        raise ValueError(f"device={name} is not supported (ntkexp runs on cpu and cuda); use auto, cpu, cuda or "
                         "cuda:<index>")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device={name} asked for, but this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def build_space(name: str, kwargs: dict[str, Any]) -> SearchSpace:
    """The search space ``name`` built with its settings; a setting it does not have is refused, naming those it has."""
    factory = SPACES.get(name)
    params = inspect.signature(factory).parameters
    accepted = [p for p in params if params[p].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and p != "variant"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"search_space.kwargs.{unknown[0]} is not a setting of the {name} space; its settings: "
                         f"{', '.join(accepted)}")
    try:
        return factory(**{k: v for k, v in kwargs.items() if v is not None})
    except TypeError:  # e.g. search_space.kwargs.C=abc: a string where a number belongs
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise ValueError(f"search_space.kwargs ({given}) have a value of the wrong type for the {name} space "
                         f"(its settings: {', '.join(accepted)})") from None


def to_run_config(cfg: RunConfig | DictConfig) -> RunConfig:
    """The typed config (the one place a DictConfig becomes dataclasses)."""
    if isinstance(cfg, RunConfig):
        return cfg
    typed = OmegaConf.to_object(cfg)
    if not isinstance(typed, RunConfig):
        raise TypeError(f"expected a config composed on the ntkexp schema, got {type(typed).__name__}")
    return typed


@dataclass
class RunContext:
    """The built pieces of a run (see the module docstring)."""

    config: RunConfig
    resolved: dict[str, Any]  # the whole resolved config, as written to summaries
    space: SearchSpace
    ground_truth: GroundTruth | None
    data: ArrayData
    device: torch.device
    store: ScoreStore
    selection: MetricSelection

    # shorthands for the parts of ``config`` read everywhere: read from it, so a context made with another config
    # (``dataclasses.replace(ctx, config=...)``) can never disagree with its parts
    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def ntk(self) -> NTKConfig:
        return self.config.ntk

    @property
    def init(self) -> InitConfig:
        return self.config.init

    @property
    def dataset(self) -> DataConfig:
        return self.config.dataset

    @property
    def train(self) -> TrainConfig:
        return self.config.trainer

    @classmethod
    def build(cls, cfg: RunConfig | DictConfig, need_ground_truth: bool = True) -> "RunContext":
        resolved = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else asdict(cfg)
        config = to_run_config(cfg)
        if config.threads is not None and config.threads < 1:
            raise ValueError(f"threads={config.threads} must be a positive number of CPU threads (or null)")
        threads = config.threads or auto_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        if not 0 <= config.seed < 2**63:
            raise ValueError(f"seed={config.seed} must be between 0 and 2**63 - 1 = {2**63 - 1}")
        if config.target not in ("test", "valid"):
            raise ValueError(f"target={config.target!r} must be 'test' or 'valid'")
        selection = expand(config.metric.names)
        if config.metric.train_epochs < 0:
            raise ValueError(f"metric.train_epochs must be >= 0, got {config.metric.train_epochs}")
        if config.trainer.batch_size is not None:  # the training protocol's batch (NDS: 128) wins over the data set's
            # a new config: the caller's (an API user's RunConfig) is never changed
            config = replace(config, dataset=replace(config.dataset, batch_size=int(config.trainer.batch_size)))
        data_cfg, ntk = config.dataset, config.ntk
        if ntk.reduction == "logit" and not 0 <= ntk.logit_index < data_cfg.num_classes:
            raise ValueError(f"ntk.logit_index={ntk.logit_index} is not a class of {data_cfg.name} "
                             f"(0..{data_cfg.num_classes - 1})")
        space = build_space(config.search_space.name, dict(config.search_space.kwargs))
        download = DownloadSettings(enabled=config.download, mirror=config.download_mirror,
                                    progress=config.task.progress)
        ground_truth = None
        if need_ground_truth:
            ground_truth = load_ground_truth(config.search_space.benchmark,
                                             fetcher(config.paths.data_root, download))
            column = data_cfg.benchmark_key if config.target == "test" else f"{data_cfg.benchmark_key}_valid"
            hint = (f"; dataset={data_cfg.name} does not go with this search_space's benchmark" if config.target == "test"
                    else f"; the benchmark records no validation accuracy for {data_cfg.benchmark_key} (use target=test)")
            ground_truth.require(column, hint)
            ground_truth.validate_archs(space.validate)
        device = resolve_device(config.device)
        data = ArrayData(data_cfg, seed=config.seed, device=device, epoch_images=config.trainer.epoch_images,
                         epoch_steps=config.trainer.epoch_steps, download=download)
        store_path = Path(config.paths.cache_dir) / CACHE_FILE if config.use_cache else None
        return cls(config=config, resolved=resolved, space=space, ground_truth=ground_truth, data=data, device=device,
                   store=ScoreStore(store_path), selection=selection)

    @property
    def accuracy_key(self) -> str:
        """The ground-truth column ranked against: the data set's key (``target=test``) or ``<key>_valid``."""
        key = self.config.dataset.benchmark_key
        return key if self.config.target == "test" else f"{key}_valid"

    @property
    def accuracy_label(self) -> str:
        """What the ranked accuracy is, in words, with its column."""
        gt = self.require_ground_truth()
        label = gt.label or "accuracy"
        if self.config.target == "valid":
            label = label.replace("test accuracy", "validation accuracy")
        return f"{label} [{self.accuracy_key}]"

    def require_ground_truth(self) -> GroundTruth:
        if self.ground_truth is None:
            raise RuntimeError("this run context was built without its ground truth")
        return self.ground_truth

    def close(self) -> None:
        self.store.close()


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity: a cluster job's share, not the whole node)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def auto_threads() -> int | None:
    """``threads=null``: the usable cores divided among the jobs a Hydra launcher runs at once (joblib's
    ``hydra.launcher.n_jobs``; -1 is one job per core), at least one; None (torch's own default) where
    ``$OMP_NUM_THREADS`` is set, which says what the user wants."""
    if os.environ.get("OMP_NUM_THREADS", "").strip():
        return None
    cores, jobs = usable_cores(), 1
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        n_jobs = (HydraConfig.get().launcher or {}).get("n_jobs")
        if n_jobs:
            jobs = cores if int(n_jobs) < 0 else int(n_jobs)
    return max(1, cores // jobs)


def device_name(device: torch.device) -> str:
    """One device in words: the GPU's name, or the CPU with its thread count."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"
