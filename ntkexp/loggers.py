"""Experiment loggers (config group ``logger``): W&B (offline by default), TensorBoard or MLflow (Lightning's
loggers), CSV/JSON files only, or none.

Every task writes its results into the Hydra run directory whatever the logger; the logger adds a dashboard copy.

W&B's mode is ``logger.mode`` (``offline`` by default, ``online``, ``disabled``); an environment variable
``WANDB_MODE`` that is set and not empty wins over it. W&B never blocks a run: online with no API key, or with a key
but no network, it logs offline instead (``wandb sync <run dir>/wandb`` uploads later); any other W&B failure
downgrades to file logging with a warning. A run that fails is finished with a non-zero exit code, so W&B marks it
failed.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ntkexp.extras import MissingExtraError

log = logging.getLogger(__name__)


@dataclass
class LoggerConfig:
    name: str = "wandb"  # wandb | tensorboard | mlflow | csv | none
    project: str = "ntkexp"
    entity: str | None = None
    mode: str = "offline"  # offline | online | disabled (a non-empty WANDB_MODE environment variable wins)
    init_timeout: float = 20.0  # seconds W&B may take to start online before ntkexp logs offline instead
    group: str | None = None
    tags: list[str] = field(default_factory=list)
    # mlflow only: where runs are recorded (None: $MLFLOW_TRACKING_URI, else ./mlruns in the current folder)
    tracking_uri: str | None = None


class ExperimentLogger:
    """Files-only logger: metrics go to ``metrics.jsonl`` in the run dir; tables and images are already files."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        with open(self.run_dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps({"step": step, **metrics}, default=float) + "\n")

    def log_summary(self, summary: dict[str, Any]) -> None:
        self.log_metrics(summary)

    def log_table(self, name: str, frame: pd.DataFrame) -> None:
        pass

    def log_image(self, name: str, path: Path) -> None:
        pass

    def finish(self, exit_code: int = 0) -> None:
        pass


class NullLogger(ExperimentLogger):
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        pass


def sweep_group() -> str | None:
    """A dashboard group for every job of a ``--multirun`` sweep: the sweep folder's path under ``outputs``
    (``correlate/multirun/<date>/<time>-<pid>``), so a sweep without ``logger.group`` is still one group; None for a
    single run."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    sweep = Path(HydraConfig.get().sweep.dir)
    return "/".join(sweep.parts[-4:])


MODES = ("offline", "online", "disabled")


def wandb_mode(cfg: LoggerConfig) -> str:
    """The W&B mode in effect: a set, non-empty ``WANDB_MODE`` wins over ``logger.mode``."""
    if "WANDB_MODE" in os.environ and not os.environ["WANDB_MODE"].strip():
        del os.environ["WANDB_MODE"]  # empty counts as unset (W&B itself would refuse it)
    mode = os.environ.get("WANDB_MODE", "").strip() or cfg.mode
    if mode not in MODES:
        raise ValueError(f"W&B mode {mode!r} (logger.mode or WANDB_MODE) is not one of: {', '.join(MODES)}")
    return mode


class WandbLogger(ExperimentLogger):
    def __init__(self, run_dir: Path, cfg: LoggerConfig, config: dict[str, Any], name: str, mode: str) -> None:
        super().__init__(run_dir)
        from ntkexp.extras import require

        wandb = require("wandb", "logger=wandb")

        self._wandb = wandb
        if mode == "online" and not (os.environ.get("WANDB_API_KEY") or Path("~/.netrc").expanduser().exists()):
            log.warning("W&B online mode requested but no API key is set: logging offline instead")
            mode = "offline"
        kwargs = dict(project=cfg.project, entity=cfg.entity, group=cfg.group or sweep_group(), tags=cfg.tags,
                      name=name,
                      config=config, dir=str(run_dir), reinit="finish_previous")
        try:
            self.run = wandb.init(mode=mode, settings=wandb.Settings(silent=True, init_timeout=cfg.init_timeout),
                                  **kwargs)
        except Exception as err:
            if mode != "online":
                raise
            log.warning("W&B could not start online (%s: %s): logging offline instead (upload later with wandb "
                        "sync %s/wandb)", type(err).__name__, err, run_dir)
            self.run = wandb.init(mode="offline", settings=wandb.Settings(silent=True), **kwargs)

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        super().log_metrics(metrics, step)
        self.run.log(metrics, step=step)

    def log_summary(self, summary: dict[str, Any]) -> None:
        super().log_summary(summary)
        for key, value in summary.items():
            self.run.summary[key] = value

    def log_table(self, name: str, frame: pd.DataFrame) -> None:
        self.run.log({name: self._wandb.Table(dataframe=frame)})

    def log_image(self, name: str, path: Path) -> None:
        self.run.log({name: self._wandb.Image(str(path))})

    def finish(self, exit_code: int = 0) -> None:
        self.run.finish(exit_code=exit_code)
        log.info("W&B run %s finished (%s)", self.run.id, "done" if exit_code == 0 else f"failed, exit code {exit_code}")


class LightningLogger(ExperimentLogger):
    """A Lightning logger as the dashboard (``logger=tensorboard``: in the run folder, ``tensorboard --logdir
    outputs``; ``logger=mlflow``: under ``logger.tracking_uri``): the resolved config as hyperparameters, numbers as
    series (step by step where the task gives steps), the summary's numbers under ``summary/``, figures as images
    (TensorBoard) or artifacts (MLflow). Tables stay files in the run folder. ``metrics.jsonl`` is written as with
    ``logger=csv``."""

    def __init__(self, run_dir: Path, backend: Any, config: dict[str, Any]) -> None:
        super().__init__(run_dir)
        self.backend = backend
        self.backend.log_hyperparams(config)

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        super().log_metrics(metrics, step)
        numbers = {k: float(v) for k, v in metrics.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if numbers:
            self.backend.log_metrics(numbers, step=step)

    def log_summary(self, summary: dict[str, Any]) -> None:
        self.log_metrics({f"summary/{k}": v for k, v in summary.items()})

    def log_image(self, name: str, path: Path) -> None:
        if hasattr(self.backend.experiment, "add_image"):  # TensorBoard
            import matplotlib.image

            self.backend.experiment.add_image(name, matplotlib.image.imread(str(path))[..., :3], dataformats="HWC")
        else:  # MLflow
            self.backend.experiment.log_artifact(self.backend.run_id, str(path))

    def finish(self, exit_code: int = 0) -> None:
        self.backend.finalize("success" if exit_code == 0 else "failed")


def lightning_logger(cfg: LoggerConfig, run_dir: Path, config: dict[str, Any], name: str) -> LightningLogger:
    """``logger=tensorboard`` / ``logger=mlflow`` through Lightning's loggers (their packages are extras)."""
    from ntkexp.extras import require

    if cfg.name == "tensorboard":
        require("tensorboardX", "logger=tensorboard")
        from lightning.pytorch.loggers import TensorBoardLogger

        backend = TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="", default_hp_metric=False)
    else:
        require("mlflow", "logger=mlflow")
        from lightning.pytorch.loggers import MLFlowLogger

        uri = cfg.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"file:{Path.cwd() / 'mlruns'}"
        if uri.startswith("file:"):  # MLflow 3 keeps its file store only on request (its database store needs more)
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        backend = MLFlowLogger(experiment_name=cfg.project, run_name=name, tracking_uri=uri,
                               tags={"group": cfg.group or sweep_group() or "", **{t: "" for t in cfg.tags}})
    return LightningLogger(run_dir, backend, config)


LOGGERS = ("wandb", "tensorboard", "mlflow", "csv", "none")


class DeferredLogger(ExperimentLogger):
    """A logger whose dashboard run is created at the first thing logged, so a run refused before it logs anything
    (bad settings, missing data, an unknown arch) leaves no failed dashboard run behind; ``finish`` ends it only if it
    was created."""

    def __init__(self, run_dir: Path, make: Any) -> None:
        super().__init__(run_dir)
        self._make, self._inner = make, None

    @property
    def inner(self) -> ExperimentLogger:
        if self._inner is None:
            self._inner = self._make()
        return self._inner

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        self.inner.log_metrics(metrics, step)

    def log_summary(self, summary: dict[str, Any]) -> None:
        self.inner.log_summary(summary)

    def log_table(self, name: str, frame: pd.DataFrame) -> None:
        self.inner.log_table(name, frame)

    def log_image(self, name: str, path: Path) -> None:
        self.inner.log_image(name, path)

    def finish(self, exit_code: int = 0) -> None:
        if self._inner is not None:
            self._inner.finish(exit_code)


def check_logger(cfg: LoggerConfig) -> None:
    """Refuse, before any work, a logger asked for by name whose package is missing (W&B, the default, is not
    refused: without it a run logs to files and says so)."""
    from ntkexp.extras import require

    if cfg.name not in LOGGERS:
        raise ValueError(f"unknown logger {cfg.name!r}; valid loggers: {', '.join(LOGGERS)}")
    if cfg.name == "tensorboard":
        require("tensorboardX", "logger=tensorboard")
    elif cfg.name == "mlflow":
        require("mlflow", "logger=mlflow")


def build_logger(cfg: LoggerConfig, run_dir: Path, config: dict[str, Any], name: str) -> ExperimentLogger:
    if cfg.name == "none":
        return NullLogger(run_dir)
    if cfg.name == "csv":
        return ExperimentLogger(run_dir)
    if cfg.name in ("tensorboard", "mlflow"):
        try:
            return lightning_logger(cfg, run_dir, config, name)
        except MissingExtraError:
            raise  # asked for by name: refused in one line naming the extra
        except Exception as err:  # a dashboard must never take a run down
            log.warning("%s logger could not start (%s: %s); logging to files only", cfg.name, type(err).__name__,
                        err)
            return ExperimentLogger(run_dir)
    if cfg.name != "wandb":
        raise ValueError(f"unknown logger {cfg.name!r}; valid loggers: {', '.join(LOGGERS)}")
    mode = wandb_mode(cfg)
    if mode == "disabled":
        return ExperimentLogger(run_dir)  # files only: no W&B run at all
    try:
        return WandbLogger(run_dir, cfg, config, name, mode)
    except MissingExtraError as err:  # the default logger on a core install: the run goes on, saying how to get it
        log.warning("%s; logging to files only (logger=csv says so up front)", err)
        return ExperimentLogger(run_dir)
    except Exception as err:  # W&B must never take a run down
        log.warning("W&B could not start (%s: %s); logging to files only", type(err).__name__, err)
        return ExperimentLogger(run_dir)
