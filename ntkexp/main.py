"""Run one composed config: set up the run directory and logger, dispatch to the task, and always close the logger.

User errors (a missing file, an invalid arch, an unknown name, a data set that does not fit the space) end the run
with one line on stderr, ``ntkexp: error: ...``, and exit status 2; nothing half-written is left looking complete
(every result file is written atomically, at the end).
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("ntkexp")

USER_ERRORS: tuple[type[BaseException], ...] = (FileNotFoundError, ValueError, KeyError, NotImplementedError)


def _quiet_third_party() -> None:
    os.environ.setdefault("WANDB_SILENT", "true")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning, module="lightning")


def run(cfg: DictConfig, run_dir: Path | None = None) -> dict[str, Any]:
    """Execute ``cfg`` (a composed ntkexp config) and return the task's summary."""
    _quiet_third_party()
    from ntkexp.loggers import build_logger
    from ntkexp.scoring import RunContext, to_run_config
    from ntkexp.tasks import TASKS, RunOutput

    config = to_run_config(cfg)
    run_dir = Path(run_dir or config.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    task = TASKS.get(config.task.name)
    logger = build_logger(config.logger, run_dir, OmegaConf.to_container(cfg, resolve=True), config.name)
    try:
        ctx = RunContext.build(cfg)
        try:
            summary = task.run(ctx, RunOutput(run_dir, logger, ctx))
        finally:
            ctx.close()
    finally:
        logger.finish()  # every job ends its W&B run, or a multirun's jobs would log into one
    log.info("results in %s", run_dir)
    return summary


def check_group_overrides(args: list[str], conf_dir: Path) -> None:
    """Refuse a config-group override whose value is not an option name (e.g. ``metric=[1,2]``, which Hydra itself
    fails on deep inside) with one line listing the group's options."""
    for arg in args:
        key, sep, value = arg.lstrip("+~").partition("=")
        group = conf_dir / key
        if not sep or not group.is_dir() or key == "hydra":
            continue
        options = sorted(p.stem for p in group.glob("*.yaml") if not p.stem.startswith("_"))
        if value.strip().startswith(("[", "{")) or not value.strip():
            raise ValueError(f"{key}={value}: a config group takes one option name (comma-separate several to "
                             f"sweep with --multirun); options: {', '.join(options)}")
        if any(v.strip().startswith("_") for v in value.split(",")):
            raise ValueError(f"{key}={value}: names starting with '_' are shared bases of other options, not options; "
                             f"options: {', '.join(options)}")


def run_cli(cfg: DictConfig) -> Any:
    """``run`` for the command line: user errors become one line and exit status 2."""
    from omegaconf.errors import OmegaConfBaseException

    from ntkexp.registry import UnknownNameError

    try:
        return run(cfg)
    except (*USER_ERRORS, UnknownNameError, OmegaConfBaseException) as err:
        print(f"ntkexp: error: {err}", file=sys.stderr)
        sys.exit(2)
