"""Experiment loggers (config group ``logger``): W&B (offline by default), CSV/JSON files only, or none.

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

log = logging.getLogger(__name__)


@dataclass
class LoggerConfig:
    name: str = "wandb"  # wandb | csv | none
    project: str = "ntkexp"
    entity: str | None = None
    mode: str = "offline"  # offline | online | disabled (a non-empty WANDB_MODE environment variable wins)
    init_timeout: float = 20.0  # seconds W&B may take to start online before ntkexp logs offline instead
    group: str | None = None
    tags: list[str] = field(default_factory=list)


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
        import wandb

        self._wandb = wandb
        if mode == "online" and not (os.environ.get("WANDB_API_KEY") or Path("~/.netrc").expanduser().exists()):
            log.warning("W&B online mode requested but no API key is set: logging offline instead")
            mode = "offline"
        kwargs = dict(project=cfg.project, entity=cfg.entity, group=cfg.group, tags=cfg.tags, name=name,
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


def build_logger(cfg: LoggerConfig, run_dir: Path, config: dict[str, Any], name: str) -> ExperimentLogger:
    if cfg.name == "none":
        return NullLogger(run_dir)
    if cfg.name == "csv":
        return ExperimentLogger(run_dir)
    if cfg.name != "wandb":
        raise ValueError(f"unknown logger {cfg.name!r}; valid loggers: wandb, csv, none")
    mode = wandb_mode(cfg)
    if mode == "disabled":
        return ExperimentLogger(run_dir)  # files only: no W&B run at all
    try:
        return WandbLogger(run_dir, cfg, config, name, mode)
    except Exception as err:  # W&B must never take a run down
        log.warning("W&B could not start (%s: %s); logging to files only", type(err).__name__, err)
        return ExperimentLogger(run_dir)
